"""The main job on the embedded default (what ``make demo`` runs): simulate impression
logs with ground truth, validate them, train the naive multi-task model, the
position-debiased model and the full-information ceiling, export, evaluate against the
truth (report with tables, gap closed with a bootstrap interval, plots) and select top
items for a few users.

Usage: python pipelines/demo.py [--out demo_output] [--epochs 5] [--small] [--quiet]
"""

import argparse

from tfrs_debias.demo import run_demo

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_output", help="data, runs and report")
    parser.add_argument("--saved-models", default="saved_models", help="where exports go")
    parser.add_argument("--epochs", type=int, default=5, help="maximum training epochs")
    parser.add_argument("--small", action="store_true", help="a tiny world")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    run_demo(args.out, args.saved_models, args.epochs, small=args.small, quiet=args.quiet)
