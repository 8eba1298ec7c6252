"""Wall time, peak RSS and sizes against rows and vocabulary size: `tfrs-debias train`
(vocabulary pass + 1 epoch) and `tfrs-debias export` vs the plain TFRS model
(`plain_tfrs.py`: vocabulary pass, 1 epoch, `tf.saved_model.save`), in one run.

"train s" is the whole `tfrs-debias train` process (TensorFlow import, vocabulary
pass, holdout validation, checkpoints, TensorBoard); "plain s" is the plain model's
vocabulary pass and fit inside its process (no import, no validation).

Data are synthetic TFRecords in the default schema (Zipf-like user and item ids over
``--items`` ids, positions 0-9, three devices, click/like labels), written directly
(not through the simulator). Every phase runs as its own process; peak RSS is that
process's maximum resident set (``wait4``).

Usage: python benchmarks/scaling.py [--rows 600000 2400000] [--items 10000 1000000]
       [--out scaling_output]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def write_part(args) -> None:
    from tfrs_debias.data.io.writer import write_examples
    from tfrs_debias.schema import ImpressionSchema

    out, part, rows, items, seed = args
    rng = np.random.default_rng(seed)

    def ids() -> np.ndarray:
        return np.minimum(rng.zipf(1.1, rows) - 1, items - 1).astype(np.int64)

    columns = {
        "user_id": ids(),
        "item_id": ids(),
        "request_id": (np.arange(rows) // 10 + part * rows).astype(np.int64),
        "position": np.tile(np.arange(10), rows // 10 + 1)[:rows].astype(np.int64),
        "device": rng.choice(np.array(["phone", "desktop", "tv"]), rows),
        "click": (rng.random(rows) < 0.1).astype(np.int64),
        "like": (rng.random(rows) < 0.03).astype(np.int64),
    }
    schema = ImpressionSchema.default(tasks=("click", "like"))
    write_examples(columns, schema, out, f"train-p{part}", num_shards=2, compression="")
    if part == 0:
        schema.save(os.path.join(out, "schema.json"))


def write_data(out: str, rows: int, items: int, parts: int = 2) -> None:
    if os.path.exists(os.path.join(out, "schema.json")):
        return
    jobs = [(out, p, rows // parts, items, p) for p in range(parts)]
    with ProcessPoolExecutor(parts) as pool:
        list(pool.map(write_part, jobs))


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # Read to the end first: waiting before reading deadlocks once the process has
    # written more than the pipe holds (Keras's progress bar over millions of rows).
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024, out


def size_mb(path: str) -> float:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 1e6


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[600_000, 2_400_000])
    p.add_argument("--items", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--out", default="scaling_output")
    args = p.parse_args(argv)
    cli = [sys.executable, "-m", "tfrs_debias"]
    results = []
    for rows in args.rows:
        for items in args.items:
            base = os.path.join(args.out, f"rows{rows}_items{items}")
            data = os.path.join(base, "data")
            write_data(data, rows, items)
            run_dir, export = os.path.join(base, "run"), os.path.join(base, "export")
            for path in (run_dir, export, os.path.join(base, "plain")):
                shutil.rmtree(path, ignore_errors=True)
            train_s, train_mb, _ = run(
                [*cli, "train", "--train-files", os.path.join(data, "train-*"),
                 "--out", run_dir, "--epochs", "1", "--validate", "none"]
            )  # fmt: skip
            export_s, export_mb, _ = run([*cli, "export", "--run", run_dir, "--out", export])
            plain_s, plain_mb, line = run(
                [sys.executable, os.path.join(HERE, "plain_tfrs.py"), "--data", data,
                 "--out", os.path.join(base, "plain")]
            )  # fmt: skip
            plain = json.loads(line.strip().splitlines()[-1])
            row = {
                "rows": rows,
                "items": items,
                "train_s": train_s,
                "train_peak_mb": train_mb,
                "export_s": export_s,
                "export_peak_mb": export_mb,
                "run_dir_mb": size_mb(run_dir),
                "export_mb": size_mb(export),
                "plain_vocabulary_fit_s": plain["vocabulary_s"] + plain["fit_s"],
                "plain_fit_peak_mb": plain["fit_peak_mb"],
                "plain_export_s": plain["export_s"],
                "plain_export_mb": size_mb(os.path.join(base, "plain")),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{'rows':>10}{'items':>10}{'train s':>9}{'plain s':>9}{'plain/ours':>11}"
        f"{'RSS MB':>8}{'plain':>7}{'export s':>9}{'plain':>7}{'run MB':>8}{'export MB':>10}"
        f"{'run/export':>11}"
    )
    for r in results:
        print(
            f"{r['rows']:>10,}{r['items']:>10,}{r['train_s']:>9.0f}"
            f"{r['plain_vocabulary_fit_s']:>9.0f}"
            f"{r['plain_vocabulary_fit_s'] / r['train_s']:>10.2f}x"
            f"{r['train_peak_mb']:>8.0f}{r['plain_fit_peak_mb']:>7.0f}"
            f"{r['export_s']:>9.1f}{r['plain_export_s']:>7.1f}"
            f"{r['run_dir_mb']:>8.0f}{r['export_mb']:>10.0f}"
            f"{r['run_dir_mb'] / r['export_mb']:>10.1f}x"
        )
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
