import pytest

from tfrs_debias.models import EstimatorConfig
from tfrs_debias.tuning import SearchSpace, config_fields


def test_search_space_override_and_config_fields():
    space = SearchSpace.default("factorized").override({"gate_width": [8], "hidden_depth": 2})
    assert space.entries["gate_width"] == [8] and space.entries["hidden_depth"] == 2
    with pytest.raises(ValueError, match=r"unknown hyper-parameters \['num_experts'\]"):
        space.override({"num_experts": [2]})
    values = {
        "embedding_dim": 16,
        "hidden_depth": 3,
        "hidden_width": 128,
        "learning_rate": 1e-3,
        "bias_hidden_width": 16,
        "bias_feature_dropout": 0.1,
        "observation_dropout": 0.0,
        "gradient_reversal": 0.3,
        "gate_width": 8,
        "component_width": 32,
        "item_marginal_alpha": 0.5,
    }
    fields = config_fields("factorized", values, ("click",))
    assert fields["hidden_units"] == [128, 64, 32]
    config = EstimatorConfig.from_dict(fields)
    assert config.gate_units == (8,) and config.item_marginal_alpha == 0.5


def test_space_file_errors_name_the_file(tmp_path):
    """A missing file, bad JSON or a JSON value other than an object is a ValueError
    naming the file (the CLI prints it as one line); a good file narrows the space."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"learning_rate": [0.01')
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    good = tmp_path / "good.json"
    good.write_text('{"learning_rate": [0.01, 0.02]}')
    for path, message in (
        (bad, "not valid JSON"),
        (listed, "expected a JSON object of name: choices, got list"),
        (tmp_path / "none.json", "file not found"),
    ):
        with pytest.raises(ValueError, match=f"^search space {path}: {message}"):
            SearchSpace.from_json("multi_task", str(path))
    assert SearchSpace.from_json("multi_task", str(good)).entries["learning_rate"] == [0.01, 0.02]
