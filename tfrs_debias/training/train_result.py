"""`TrainResult`: what `train` returns (the model, its history and metrics) and the
summary lines the ``train`` command prints."""

from __future__ import annotations

import dataclasses
from typing import Any

from tfrs_debias.models.base import BaseEstimator


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    model: BaseEstimator
    history: dict[str, list[float]]
    metrics: dict[str, Any]
    is_chief: bool = True

    def summary(self) -> str:
        """Lines for people: epochs, epoch-mean losses and AUCs of the kept weights,
        throughput, where the run is."""
        m = self.metrics
        shown = ", ".join(
            f"{k}={v:.4f}"
            for k, v in sorted(m["final"].items())
            if "auc" in k or k.endswith("loss")
        )
        lines = [
            f"trained {m['model']} for {m['epochs_run']} epochs "
            f"(batch {m['batch_size']}, best epoch {m['best_epoch']}): {shown}",
            f"throughput {m['examples_per_sec']:,.0f} examples/s",
        ]
        calibration = m.get("slice_calibration")
        if calibration:
            fitted = ", ".join(
                f"{task} AUC {t['slice_auc_before']:.4f} -> {t['slice_auc_after']:.4f}"
                for task, t in calibration["tasks"].items()
                if t is not None
            )
            rows = calibration["rows"]
            lines.append(f"calibrated on {rows} random-slice rows: {fitted or 'no task fitted'}")
        return "\n".join([*lines, f"run written to {self.run_dir}"])
