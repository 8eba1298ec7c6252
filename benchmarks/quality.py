"""Quality benchmark: how much of the naive -> full-information gap each estimator closes.

In one run on the same simulated data (the default simulator unless told otherwise):
naive (multi-task on the logs), position-debiased with each regulariser (plain,
bias-feature dropout, observation dropout, gradient reversal), PAL vs additive bias
combination, listwise (softmax) PAL, the dual learning algorithm (DLA), factorized,
anchored factorized, the examined bound (multi-task on the logs' examined impressions
only: the same clicks with the unseen impressions left out, so no estimator of the logs
knows more) and the ceiling (multi-task on the full-information twin: the same slates,
every impression examined). Prints one table (NDCG@10 overall and per bucket,
examination-curve error, gap closed = (model − naive)/(ceiling − naive) with a paired
bootstrap interval, head-item share of the top 10), checks the targets, and writes
report.md + plots.

With --popularity the logs first get PreRec popularity / activity factors
(`tfrs-debias popularity`), so the debiased models train a popularity tower and serve
with the intervention; the table's head-share column then shows how far the top 10
moves from popular items towards the truth's own mix.

Usage: python benchmarks/quality.py [--out quality_output] [--epochs 0] [--config sim.json]
       [--popularity] [--only naive,pd_feature_dropout,dual_learning,full_information]
"""

from __future__ import annotations

import argparse
import json
import os

from tfrs_debias.data import ImpressionSimulator, SimulatorConfig
from tfrs_debias.data.sources.popularity import add_popularity_features
from tfrs_debias.evaluation import (
    Variant,
    check_targets,
    default_variants,
    format_table,
    run_comparison,
    summary_rows,
    write_report,
)
from tfrs_debias.models import EstimatorConfig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="quality_output")
    p.add_argument(
        "--epochs", type=int, default=0, help="maximum epochs (0: train's default, early-stopped)"
    )
    p.add_argument("--config", help="JSON of SimulatorConfig overrides")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--popularity",
        action="store_true",
        help="add popularity factors and train the popularity towers",
    )
    p.add_argument(
        "--only",
        help="comma-separated variant names to run (naive and full_information are needed "
        "for the gap closed)",
    )
    args = p.parse_args(argv)
    overrides = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            overrides = json.load(fh)
    data = os.path.join(args.out, "data")
    sim = ImpressionSimulator(SimulatorConfig(**{**overrides, "seed": args.seed}))
    sim.write(data, overwrite=True, progress=False)
    variants = list(default_variants())
    pal = EstimatorConfig(model="position_debiased")
    variants[-1:-1] = [
        Variant(
            "factorized_item_marginal", EstimatorConfig(model="factorized", item_marginal_alpha=1.0)
        ),
        Variant("pd_additive", pal.replace(bias_combine="add")),
        Variant("pd_listwise", pal.replace(task_losses=("softmax", "bce"))),
        Variant("dual_learning", EstimatorConfig(model="dual_learning")),
        # The logs' examined impressions only (the same clicks, the unseen impressions
        # left out): what an estimator that knew the examination could reach.
        Variant("examined_bound", EstimatorConfig(model="multi_task"), "examined_train"),
    ]
    if args.only:
        keep = set(args.only.split(","))
        unknown = keep - {v.name for v in variants}
        if unknown:
            p.error(f"--only: unknown variants {sorted(unknown)}")
        variants = [v for v in variants if v.name in keep]
    if args.popularity:
        add_popularity_features(data, data + "_popularity", overwrite=True, progress=False)
        data += "_popularity"
    results = run_comparison(
        data, variants, os.path.join(args.out, "runs"), epochs=args.epochs or None, verbose=1
    )
    rows = summary_rows(results)
    print(format_table(rows))
    paths = write_report(results, os.path.join(args.out, "report"), title="Quality benchmark")
    misses = check_targets(rows)
    print("\ntargets: " + ("all met" if not misses else "missed:\n  " + "\n  ".join(misses)))
    bound = next((r for r in rows if r["model"] == "examined_bound"), None)
    if bound is not None and bound["gap_closed"] is not None:
        print(
            f"examined_bound (the naive model on the examined impressions alone) closes "
            f"{bound['gap_closed']:.0%} [{bound['gap_low']:.0%}, {bound['gap_high']:.0%}]: "
            "the most that debiasing these logs can be expected to close"
        )
    print(f"report: {paths['report']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
