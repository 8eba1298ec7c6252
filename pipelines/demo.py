"""The main job on the embedded default: simulate impression logs with ground truth,
validate them, train the naive multi-task model, the position-debiased model and the
oracle (multi-task on the no-position-effect twin), and compare their served scores
against true relevance.

Run with ``make demo`` or ``python pipelines/demo.py [--out DIR] [--epochs N]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from tfrs_debias.cli import main as cli
from tfrs_debias.data import GroundTruth
from tfrs_debias.metrics import examination_error, learned_examination, score_candidates, truth_ndcg
from tfrs_debias.training import load_run

RUNS = (  # name, model, training split
    ("naive", "multi_task", "train"),
    ("position_debiased", "position_debiased", "train"),
    ("oracle", "multi_task", "oracle_train"),
)


def step(argv: list[str]) -> None:
    print(f"\n$ tfrs-debias {' '.join(argv)}", flush=True)
    code = cli(argv)
    if code:
        sys.exit(code)


def run(out: str, epochs: int) -> None:
    data = os.path.join(out, "data")
    step(["simulate", "--out", data, "--overwrite"])
    step(["validate", "--files", os.path.join(data, "train*")])
    for name, model, split in RUNS:
        step(
            [
                "train",
                "--train-files",
                os.path.join(data, f"{split}-*"),
                "--valid-files",
                os.path.join(data, "valid-*"),
                "--model",
                model,
                "--out",
                os.path.join(out, "runs", name),
                "--epochs",
                str(epochs),
            ]
        )
    truth = GroundTruth.load(data)
    rows = []
    for name, _, _ in RUNS:
        model = load_run(os.path.join(out, "runs", name))
        scores = score_candidates(model.debiased_logits, truth, model.schema)
        ndcg = {
            t: float(np.nanmean(truth_ndcg(scores[..., i], truth, t)))
            for i, t in enumerate(model.task_names)
        }
        err = "-"
        if getattr(model, "bias_tower", None) is not None:
            learned = learned_examination(
                model.relative_examination, truth.devices, truth.examination.shape[1]
            )
            e = examination_error(learned, truth)
            err = f"{e.mean():.3f} / {e.max():.3f}"
        rows.append((name, ndcg["click"], ndcg.get("like", float("nan")), err))
    naive, oracle = rows[0][1], rows[-1][1]
    print("\nServed (debiased) scores vs true relevance on the truth's held-out candidates")
    print(
        f"{'model':<20}{'NDCG@10 click':>14}{'NDCG@10 like':>14}{'gap closed':>12}"
        f"{'exam. err mean / max':>24}"
    )
    for name, click, like, err in rows:
        gap = (click - naive) / (oracle - naive) if oracle != naive else float("nan")
        print(f"{name:<20}{click:>14.4f}{like:>14.4f}{gap:>11.0%} {err:>23}")
    print(f"\ndata in {data}, runs in {os.path.join(out, 'runs')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output", help="where data and runs go")
    parser.add_argument("--epochs", type=int, default=5, help="maximum training epochs")
    args = parser.parse_args()
    run(args.out, args.epochs)
