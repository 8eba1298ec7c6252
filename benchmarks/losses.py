"""Per-task losses for the debiased estimator, in one run on the default simulator:
pointwise BCE (the default), listwise softmax and pairwise logistic (over the rows of a
request), each with the position-debiased estimator, against naive and the
full-information ceiling. Prints NDCG@10 of the served scores, the gap closed with its
bootstrap interval, and the examination-curve error.

Usage: python benchmarks/losses.py [--out losses_output] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os

from tfrs_debias.data import ImpressionSimulator, SimulatorConfig
from tfrs_debias.evaluation import Variant, format_table, run_comparison, summary_rows
from tfrs_debias.models import EstimatorConfig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="losses_output")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    data = os.path.join(args.out, "data")
    ImpressionSimulator(SimulatorConfig(seed=args.seed)).write(data, overwrite=True, progress=False)
    pd = EstimatorConfig(model="position_debiased")
    variants = [
        Variant("naive", EstimatorConfig(model="multi_task")),
        Variant("pd_bce", pd),
        Variant("pd_softmax", pd.replace(task_losses=("softmax", "softmax"))),
        Variant("pd_pairwise", pd.replace(task_losses=("pairwise_logistic", "pairwise_logistic"))),
        Variant("full_information", EstimatorConfig(model="multi_task"), "full_train"),
    ]
    results = run_comparison(data, variants, os.path.join(args.out, "runs"), epochs=args.epochs)
    print(format_table(summary_rows(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
