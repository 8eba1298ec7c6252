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
