"""`run_comparison`: train several estimator variants on one simulated dataset and
evaluate each against the ground truth — the engine of the demo and the quality
benchmark."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from tfrs_debias.data.truth import GroundTruth
from tfrs_debias.evaluation.evaluator import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training import train


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named estimator config and the split it trains on (``oracle_train`` for the
    oracle: the same slates without a position effect)."""

    name: str
    config: EstimatorConfig
    train_split: str = "train"


def default_variants(**common) -> tuple[Variant, ...]:
    """naive, position-debiased (plain / bias-feature dropout / observation dropout /
    gradient reversal), factorized, anchored factorized, oracle."""
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
        Variant("oracle", EstimatorConfig(model="multi_task", **common), "oracle_train"),
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
    schema = ImpressionSchema.load(os.path.join(data_dir, "schema.json"))
    evaluator = evaluator or Evaluator(GroundTruth.load(data_dir))
    results = {}
    for v in variants:
        if verbose:
            print(f"training {v.name} ({v.config.model} on {v.train_split})", flush=True)
        run = train(
            os.path.join(data_dir, f"{v.train_split}-*"),
            os.path.join(runs_dir, v.name),
            v.config,
            schema,
            valid_files=os.path.join(data_dir, "valid-*"),
            epochs=epochs,
            batch_size=batch_size,
            verbose=verbose,
            validate="none",
        )
        results[v.name] = evaluator.evaluate(
            Scorer.from_estimator(run.model), os.path.join(data_dir, "test-*"), schema
        )
        results[v.name]["train"] = {
            "epochs_run": run.metrics["epochs_run"],
            "examples_per_sec": run.metrics["examples_per_sec"],
        }
    return results
