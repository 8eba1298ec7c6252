"""`run_demo`: the whole story on the embedded default, as library calls.

simulate -> validate -> train the naive model (multi-task), the position-debiased model
and the full-information ceiling (multi-task on the twin where every impression was
examined) -> export -> evaluate all three against the ground truth (report with tables,
gap closed with a bootstrap interval, plots) -> select top items for a few users from
the debiased export. ``tfrs-debias demo`` and ``pipelines/demo.py`` run it.
"""

from __future__ import annotations

import os

from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.validation import validate_files
from tfrs_debias.data.sources.simulator import ImpressionSimulator, SimulatorConfig
from tfrs_debias.evaluation.evaluate_exports import evaluate_exports
from tfrs_debias.evaluation.report import format_table
from tfrs_debias.models.config import EstimatorConfig
from tfrs_debias.serving.export import export_saved_model
from tfrs_debias.serving.top_item_selector import TopItemSelector
from tfrs_debias.training.trainer import train

MODELS = (  # name, estimator, training split
    ("naive", "multi_task", "train"),
    ("position_debiased", "position_debiased", "train"),
    ("full_information", "multi_task", "full_train"),
)


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run_demo(
    out: str = "demo_output",
    saved_models: str = "saved_models",
    epochs: int = 5,
    small: bool = False,
    quiet: bool = False,
) -> list[dict]:
    """Runs the demo; returns the evaluation summary rows (one per model)."""
    data = LogDirectory(os.path.join(out, "data"))
    config = SimulatorConfig.small() if small else SimulatorConfig()
    _step(f"simulate {config.num_requests} requests into {data.path}")
    ImpressionSimulator(config).write(data.path, overwrite=True, progress=not quiet)
    schema = data.schema()
    _step("validate the training logs")
    print(validate_files(data.require("train"), schema).summary())
    exports = {}
    for name, model, split in MODELS:
        _step(f"train {name} ({model} on {split})")
        run = train(
            data.require(split),
            os.path.join(out, "runs", name),
            EstimatorConfig(model=model),
            schema,
            valid_files=data.validation_files(split),
            epochs=epochs,
            validate="none",
            verbose=0 if quiet else 2,
        )
        print(run.summary())
        exports[name] = export_saved_model(run.model, os.path.join(saved_models, f"demo_{name}"))
        print(f"exported {name} to {exports[name]}")
    _step("evaluate against the ground truth")
    report = os.path.join(out, "report")
    _, rows, paths = evaluate_exports(data.path, exports, report)
    print(format_table(rows))
    truth = data.truth()
    selector = TopItemSelector.from_saved_model(exports["position_debiased"])
    for k in range(3):
        row = k * len(truth.users) // 3
        user = {"user_id": int(truth.users[row])}
        user.update({n: v[row] for n, v in truth.user_features.items()})
        valid = truth.mask[row]
        candidates = {"item_id": truth.candidates[row][valid]}
        candidates.update({n: v[row][valid] for n, v in truth.item_features.items()})
        picks = selector.select(user, candidates, k=5)
        _step(f"top 5 for user {user['user_id']} (debiased export)")
        for rank, p in enumerate(picks, start=1):
            print(f"{rank}. item {p.item_id}  score {p.score:.4f}")
    plots = "examination.png, ndcg_buckets.png, fairness.png, tradeoff.png"
    print(f"\nreport: {paths['report']} (plots: {plots})")
    print(f"exports: {', '.join(exports.values())}")
    return rows
