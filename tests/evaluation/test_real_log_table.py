import numpy as np
import pytest

from tfrs_debias.click_models import ClickLog, perplexity
from tfrs_debias.data import ImpressionSimulator, LogDirectory, SimulatorConfig
from tfrs_debias.evaluation.click_model_comparison import ClickModelBaselines
from tfrs_debias.evaluation.evaluator import Scorer
from tfrs_debias.evaluation.real_log_table import RealLogTable


@pytest.fixture(scope="module")
def tiny_search_log(tmp_path_factory):
    folder = LogDirectory(str(tmp_path_factory.mktemp("tiny_search") / "data"))
    config = SimulatorConfig.search(num_requests=3000, slate_length=5, candidates_per_request=6)
    ImpressionSimulator(config).write(folder.path, progress=False)
    schema = folder.schema()
    baselines = ClickModelBaselines(folder.require("train"), folder.require("test"), schema)
    return schema, baselines


def _scorer(schema, pbm, with_examination):
    def biased(features):
        log = ClickLog.from_columns(
            {k: np.asarray(v) for k, v in features.items()},
            "user_id", "item_id", "position", "click", "device",
            contexts=pbm.contexts, num_ranks=pbm.gamma.shape[0],
        )  # fmt: skip
        p = pbm.predict(log)
        if not with_examination:  # the same attractiveness, a flat curve
            p = p / log.cell_values(pbm.gamma, pbm.contexts)
        return np.clip(p, 1e-6, 1 - 1e-6)[:, None]

    return Scorer(("click",), schema, biased, biased, True)


def test_a_scorer_that_is_pbm_has_pbm_curve_and_perplexity(tiny_search_log):
    schema, baselines = tiny_search_log
    pbm = baselines.fitted("click")["models"]["pbm"]
    table = RealLogTable("click")
    row = table.add_click_row("pbm itself", _scorer(schema, pbm, True), baselines)
    assert row["curve_max_error"] == pytest.approx(0.0, abs=1e-5)
    assert row["perplexity"] == pytest.approx(row["pbm"], rel=1e-6)
    assert row["pbm_curve"][0] == 1.0 and len(row["pbm_curve"]) == 5


def test_a_flat_curve_is_off_by_the_hand_computed_error(tiny_search_log):
    schema, baselines = tiny_search_log
    pbm = baselines.fitted("click")["models"]["pbm"]
    table = RealLogTable("click")
    row = table.add_click_row("flat", _scorer(schema, pbm, False), baselines)
    curve = pbm.examination()[0]  # relative to rank 1; the flat model says 1 everywhere
    assert row["curve_mean_error"] == pytest.approx(np.mean(np.abs(1 - curve) / curve), rel=1e-4)
    assert row["curve_max_error"] == pytest.approx(np.max(np.abs(1 - curve) / curve), rel=1e-4)
    assert row["curve_max_error"] > 0.5  # a negative control: it must fail the 10% bar
    fit = baselines.fitted("click")
    test = fit["test_log"]
    assert row["rank_ctr"] == pytest.approx(
        perplexity(test.clicks, fit["probs"]["rank_ctr"], test.ranks), rel=1e-9
    )


def test_markdown_has_one_line_per_row_and_dashes_for_missing_values():
    table = RealLogTable("ratings")
    table.rows = [
        {"model": "multi_task", "served_auc": 0.75801, "auc": 0.758, "ndcg@5": 0.47},
        {"model": "x", "served_auc": None, "auc": 0.5, "ndcg@5": 0.1},
    ]
    assert table.markdown().splitlines() == [
        "| model | served AUC | full-model AUC | NDCG@5 |",
        "|---|---|---|---|",
        "| multi_task | 0.7580 | 0.7580 | 0.4700 |",
        "| x | - | 0.5000 | 0.1000 |",
    ]
    with pytest.raises(ValueError, match="kind must be"):
        RealLogTable("feed")
