"""`run_comparison`: train several estimator variants on one simulated dataset and
evaluate each against the ground truth — the engine of the demo and the quality
benchmark."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.evaluation.evaluator import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training import train


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named estimator config and the split it trains on (``full_train`` for the
    ceiling: the same slates with every impression examined)."""

    name: str
    config: EstimatorConfig
    train_split: str = "train"


def default_variants(**common) -> tuple[Variant, ...]:
    """naive, position-debiased (plain / bias-feature dropout / observation dropout /
    gradient reversal), factorized, anchored factorized, and the full-information
    ceiling (the naive model on the full-information twin)."""
    pd = EstimatorConfig(model="position_debiased", **common)
    return (
        Variant("naive", EstimatorConfig(model="multi_task", **common)),
        Variant("pd_plain", pd.replace(bias_feature_dropout=0.0)),
        Variant("pd_feature_dropout", pd.replace(bias_feature_dropout=0.1)),
        Variant(
            "pd_observation_dropout", pd.replace(bias_feature_dropout=0.0, observation_dropout=0.1)
        ),
        Variant(
            "pd_gradient_reversal", pd.replace(bias_feature_dropout=0.0, gradient_reversal=0.3)
        ),
        Variant("factorized", EstimatorConfig(model="factorized", **common)),
        Variant("anchored_factorized", EstimatorConfig(model="anchored_factorized", **common)),
        Variant("full_information", EstimatorConfig(model="multi_task", **common), "full_train"),
    )


def run_comparison(
    data_dir: str,
    variants: Sequence[Variant],
    runs_dir: str,
    epochs: int = 5,
    batch_size: int = 4096,
    verbose: int | str = 0,
    evaluator: Evaluator | None = None,
) -> dict[str, dict]:
    """Trains every variant on ``data_dir`` and evaluates its served scores against the
    truth (and the test logs). Returns ``{variant name: Evaluator.evaluate result}``."""
    folder = LogDirectory(data_dir)
    schema = ImpressionSchema.load(folder.schema_path)
    evaluator = evaluator or Evaluator(GroundTruth.load(data_dir))
    results = {}
    for v in variants:
        if verbose:
            print(f"training {v.name} ({v.config.model} on {v.train_split})", flush=True)
        run = train(
            folder.require(v.train_split),
            os.path.join(runs_dir, v.name),
            v.config,
            schema,
            valid_files=folder.validation_files(v.train_split),
            epochs=epochs,
            batch_size=batch_size,
            verbose=verbose,
            validate="none",
        )
        results[v.name] = evaluator.evaluate(
            Scorer.from_estimator(run.model), folder.require("test"), schema
        )
        results[v.name]["train"] = {
            "epochs_run": run.metrics["epochs_run"],
            "examples_per_sec": run.metrics["examples_per_sec"],
        }
    return results


@dataclasses.dataclass(frozen=True)
class Targets:
    """Quality targets on the default simulator (see the evaluation issue).

    Attributes:
      min_gap_closed: the best position-debiased variant closes at least this share of
        the naive -> full-information NDCG gap (the point estimate; not checked when
        the gap is not measurable).
      max_exam_error: its examination curve is within this relative error at every
        position shown.
      max_power_drop: factorized models may lose at most this relative power-user NDCG
        against the best position-debiased variant, while improving new-user and
        tail-item NDCG over it.
      min_ndcg_gain: the best position-debiased variant beats naive NDCG by at least
        this relative margin (None: not checked). For small worlds, where the
        naive -> ceiling gap is too small to measure.
    """

    min_gap_closed: float | None = 0.95
    max_exam_error: float = 0.10
    max_power_drop: float = 0.01
    min_ndcg_gain: float | None = None


def check_targets(
    rows: Sequence[dict],
    targets: Targets = Targets(),
    debiased_prefix: str = "pd_",
    factorized: Sequence[str] = ("factorized", "anchored_factorized"),
) -> list[str]:
    """Which targets the `summary_rows` miss (empty when all are met)."""
    by_name = {r["model"]: r for r in rows}
    debiased = [r for r in rows if r["model"].startswith(debiased_prefix)]
    if not debiased:
        return [f"no position-debiased variant (name starting {debiased_prefix!r})"]
    best = max(debiased, key=lambda r: r["ndcg"])
    misses = []
    if targets.min_gap_closed is not None and (
        best["gap_closed"] is None or best["gap_closed"] < targets.min_gap_closed
    ):
        misses.append(
            f"{best['model']} closes {best['gap_closed']} of the gap "
            f"(target >= {targets.min_gap_closed:.0%})"
        )
    naive = by_name.get("naive")
    if targets.min_ndcg_gain is not None:
        gain = best["ndcg"] / naive["ndcg"] - 1 if naive else None
        if gain is None or gain < targets.min_ndcg_gain:
            misses.append(
                f"{best['model']} NDCG gain over naive {gain} "
                f"(target >= {targets.min_ndcg_gain:.0%})"
            )
    if best["exam_max_error"] is None or best["exam_max_error"] > targets.max_exam_error:
        misses.append(
            f"{best['model']} examination error {best['exam_max_error']} "
            f"(target <= {targets.max_exam_error:.0%} at every position)"
        )
    for name in factorized:
        row = by_name.get(name)
        if row is None:
            continue
        for key in ("user_new", "item_tail"):
            if row[key] is None or row[key] <= best[key]:
                misses.append(
                    f"{name} {key} NDCG {row[key]} does not beat {best['model']} {best[key]}"
                )
        drop = 1 - row["user_power"] / best["user_power"]
        if drop >= targets.max_power_drop:
            misses.append(
                f"{name} power-user NDCG drops {drop:.1%} vs {best['model']} "
                f"(target < {targets.max_power_drop:.0%})"
            )
    return misses
