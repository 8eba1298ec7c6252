"""The main job on the embedded default: simulate impression logs with ground truth and
validate them. (Training, evaluation and export join as those stages land.)

Run with ``make demo`` or ``python pipelines/demo.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import sys

from tfrs_debias.cli import main as cli


def run(out: str) -> int:
    data = os.path.join(out, "data")
    steps = [
        ["simulate", "--out", data, "--overwrite"],
        ["validate", "--files", os.path.join(data, "train*")],
    ]
    for argv in steps:
        print(f"\n$ tfrs-debias {' '.join(argv)}", flush=True)
        code = cli(argv)
        if code:
            return code
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output", help="where data and runs go")
    sys.exit(run(parser.parse_args().out))
