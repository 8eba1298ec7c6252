import json
import os
from pathlib import Path

import pytest

from tfrs_debias.cli import main


def test_demo_end_to_end(tmp_path, capsys):
    out, models = str(tmp_path / "demo"), str(tmp_path / "saved_models")
    assert (
        main(
            ["demo", "--small", "--quiet", "--out", out, "--saved-models", models, "--epochs", "2"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "| naive |" in text and "| position_debiased |" in text and "top 5 for user" in text
    for name in ("naive", "position_debiased", "full_information"):
        assert os.path.exists(os.path.join(models, f"demo_{name}", "1", "saved_model.pb"))
    report = os.path.join(out, "report")
    for f in (
        "report.md",
        "metrics.json",
        "examination.png",
        "ndcg_buckets.png",
        "fairness.png",
        "tradeoff.png",
    ):
        assert os.path.exists(os.path.join(report, f)), f
    text = Path(report, "report.md").read_text()
    assert "| position_debiased | user_segment |" in text and "ANOVA p" in text
    assert "## Diversity trade-off" in text and "| position_debiased | 0.2 |" in text
    evaluated = json.loads(Path(report, "metrics.json").read_text())["models"]
    trade = evaluated["position_debiased"]["tradeoff"]
    # λ = 0.2 gives more diverse lists than ranking by score alone (λ = 1).
    assert trade["intra_list_similarity"][-1] < trade["intra_list_similarity"][0]
    test = evaluated["position_debiased"]["fairness"]["user_groups"]["user_segment"]["error"]
    assert 0 <= test["anova_p"] <= 1 and len(test["groups"]) >= 2
    summary = {
        r["model"]: r for r in json.loads(Path(report, "metrics.json").read_text())["summary"]
    }
    ceiling = summary["full_information"]
    # The ceiling is 100% and naive 0% of the gap whenever the gap is measurable.
    assert ceiling["gap_closed"] is None or (
        ceiling["gap_closed"] == pytest.approx(1) and summary["naive"]["gap_closed"] == 0
    )
    assert summary["naive"]["exam_mean_error"] is None  # no bias part, no curve
    assert (
        summary["position_debiased"]["exam_mean_error"] is not None
    )  # curve recovery: evaluation/test_comparison.py
    # evaluate on logs only (no truth): AUC/log-loss of the biased signature
    os.remove(os.path.join(out, "data", "truth.npz"))
    assert (
        main(
            [
                "evaluate",
                "--model",
                os.path.join(models, "demo_naive"),
                "--data",
                os.path.join(out, "data"),
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 0
    )
    assert "demo_naive click: logged AUC" in capsys.readouterr().out
    # Without a truth: click-model baselines beside the model; no curve for a model
    # without a bias part.
    clicks = json.loads(Path(tmp_path, "r2", "metrics.json").read_text())["models"]["demo_naive"]
    clicks = clicks["click_models"]
    assert set(clicks["perplexity"]) == {"pbm", "rank_ctr", "doc_ctr", "model"}
    assert all(1 <= v < 2 for v in clicks["perplexity"].values())
    assert clicks["examination"] is None
