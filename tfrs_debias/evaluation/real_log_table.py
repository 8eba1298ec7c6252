"""`RealLogTable`: the rows `benchmarks/real_logs.py` prints, one per model and data set.

On a search click log (no ground truth) a row is what `ClickModelBaselines.compare`
measures: the learned examination curve's mean / max relative error per rank against
PBM fitted by EM on the same training sessions, and the held-out click perplexity of
the model beside PBM's, rank CTR's and document CTR's. On ratings with a random test a
row is the served score's AUC over the random test (and the full model's, which
keeps the user and item marginals a factorized model does not serve) and the served
score's NDCG@5 per user (`Evaluator`). Baselines without a TensorFlow model
(`MatrixFactorization`) enter through `Scorer`, like any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_debias.evaluation.click_model_comparison import ClickModelBaselines
from tfrs_debias.evaluation.evaluator import Evaluator, Scorer

CLICK_COLUMNS = (
    ("model", "model", "{}"),
    ("curve_mean_error", "curve error mean", "{:.1%}"),
    ("curve_max_error", "curve error max", "{:.1%}"),
    ("perplexity", "perplexity", "{:.5f}"),
    ("pbm", "PBM", "{:.5f}"),
    ("rank_ctr", "rank CTR", "{:.5f}"),
    ("doc_ctr", "doc CTR", "{:.5f}"),
)
RATINGS_COLUMNS = (
    ("model", "model", "{}"),
    ("served_auc", "served AUC", "{:.4f}"),
    ("auc", "full-model AUC", "{:.4f}"),
    ("ndcg@5", "NDCG@5", "{:.4f}"),
)


class RealLogTable:
    """Rows of one data set's table (``kind`` ``"click"`` or ``"ratings"``)."""

    def __init__(self, kind: str):
        if kind not in ("click", "ratings"):
            raise ValueError(f"kind must be 'click' or 'ratings', got {kind!r}")
        self.kind = kind
        self.rows: list[dict[str, Any]] = []

    def add_click_row(self, name: str, scorer: Scorer, baselines: ClickModelBaselines) -> dict:
        """Measures ``scorer`` on the click log of ``baselines`` and appends the row."""
        result = baselines.compare(scorer)
        if result is None:
            raise ValueError(f"{name}: nothing to compare on this log (no rank or no label)")
        curve = result["examination"] or {}
        ppl = result["perplexity"]
        row = {
            "model": name,
            "curve_mean_error": curve.get("mean_error_vs_pbm"),
            "curve_max_error": curve.get("max_error_vs_pbm"),
            "learned_curve": (curve.get("learned") or [None])[0],
            "learned_low": (curve.get("learned_low") or [None])[0],
            "learned_high": (curve.get("learned_high") or [None])[0],
            "pbm_curve": (curve.get("pbm") or [None])[0],
            "perplexity": ppl["model"],
            "pbm": ppl["pbm"],
            "rank_ctr": ppl["rank_ctr"],
            "doc_ctr": ppl["doc_ctr"],
        }
        self.rows.append(row)
        return row

    def add_ratings_row(
        self, name: str, scorer: Scorer, evaluator: Evaluator, test_files: Sequence[str]
    ) -> dict:
        """Measures ``scorer``'s served score on the random test and appends the row."""
        result = evaluator.evaluate(scorer, test_files, scorer.schema)
        task = scorer.tasks[0]
        logged = result["logged"]["tasks"][task]
        row = {
            "model": name,
            "served_auc": logged["served_auc"],
            "auc": logged["auc"],
            "ndcg@5": result["ranking"]["ndcg"][task]["@5"],
        }
        self.rows.append(row)
        return row

    def markdown(self) -> str:
        columns = CLICK_COLUMNS if self.kind == "click" else RATINGS_COLUMNS
        lines = [
            "| " + " | ".join(title for _, title, _ in columns) + " |",
            "|" + "---|" * len(columns),
        ]
        for row in self.rows:
            cells = [
                "-" if row.get(key) is None else fmt.format(row[key]) for key, _, fmt in columns
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
