import json
from pathlib import Path

import pytest

from tfrs_debias.evaluation import (
    summary_rows,
    write_report,
)


def test_report_files(tmp_path):
    res = {
        "ranking": {
            "ndcg": {"click": {"@10": 0.6}},
            "ndcg_by_user_bucket": {"click": {b: {"@10": 0.5} for b in ("new", "casual", "power")}},
            "ndcg_by_item_bucket": {"click": {b: {"@10": 0.4} for b in ("head", "torso", "tail")}},
            "head_share_top10": 0.3,
            "head_share_top10_truth": 0.1,
        },
        "examination": {
            "devices": ["phone"],
            "learned": [[1.0, 0.6]],
            "true": [[1.0, 0.5]],
            "relative_error": [[0.0, 0.2]],
            "max_error": 0.2,
            "mean_error": 0.1,
        },
    }

    def with_users(ranking, values):
        # Per-user NDCG: every user gains the same over naive, so each bootstrap sample
        # gives the same share: (0.6 - 0.5) / (0.8 - 0.5) = 1/3, interval [1/3, 1/3].
        per_user = {"click": {"@10": values}}
        return {**ranking, "ndcg": {"click": {"@10": sum(values) / 2}}, "ndcg_per_user": per_user}

    results = {
        "naive": {"ranking": with_users(res["ranking"], [0.4, 0.6])},
        "pd": {**res, "ranking": with_users(res["ranking"], [0.5, 0.7])},
        "full_information": {"ranking": with_users(res["ranking"], [0.7, 0.9])},
    }
    paths = write_report(results, str(tmp_path))
    rows = summary_rows(results)
    assert [round(r["gap_closed"], 4) for r in rows] == [0.0, round(0.1 / 0.3, 4), 1.0]
    text = Path(paths["report"]).read_text()
    assert rows[1]["gap_low"] == pytest.approx(1 / 3) and rows[1]["gap_high"] == pytest.approx(
        1 / 3
    )
    assert "| pd | 0.6000 | 33% [33%, 33%] |" in text and "| phone | 0% | 20% |" in text
    for key in ("examination_plot", "buckets_plot"):
        assert Path(paths[key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(Path(paths["metrics"]).read_text())["summary"][1]["model"] == "pd"
