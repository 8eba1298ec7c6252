"""The main job on the embedded default (what ``make demo`` runs): simulate impression
logs with ground truth, validate them, train the naive multi-task model, the
position-debiased model and the oracle, export, evaluate against the truth (report with
tables and plots) and select top items for a few users.

Usage: python pipelines/demo.py [--out demo_output] [--epochs 5] [--small]
(the same flags as ``tfrs-debias demo``).
"""

import sys

from tfrs_debias.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
