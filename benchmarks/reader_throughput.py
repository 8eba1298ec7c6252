"""Rows/s of the library's vectorised reader vs the naive per-record pipeline.

Both read the same files in one run:
  naive:      TFRecordDataset -> map(parse_single_example) -> batch
  vectorised: tfrs_debias.data.make_dataset (batch -> parse_example -> prefetch),
              with and without its record shuffle buffer.

Usage: python benchmarks/reader_throughput.py [--data DIR] [--rows N] [--compression gzip]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from tfrs_debias.data import ImpressionSimulator, SimulatorConfig, make_dataset
from tfrs_debias.data.io.reader import make_naive_dataset
from tfrs_debias.schema import ImpressionSchema


def rows_per_second(ds, repeats: int = 2) -> float:
    best = 0.0
    for _ in range(repeats):
        start, rows = time.perf_counter(), 0
        for batch in ds:
            rows += int(batch["user_id"].shape[0])
        best = max(best, rows / (time.perf_counter() - start))
    return best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="dataset directory (default: simulate one in a temp dir)")
    p.add_argument("--rows", type=int, default=300_000, help="impressions to simulate")
    p.add_argument("--compression", choices=("none", "gzip"), default="none")
    p.add_argument("--batch-size", type=int, default=4096)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if not data:
            data = tmp
            cfg = SimulatorConfig(num_requests=args.rows // 8, seed=0)
            ImpressionSimulator(cfg).write(
                data,
                num_shards=4,
                compression="GZIP" if args.compression == "gzip" else "",
                progress=False,
            )
        files = os.path.join(data, "train-*")
        schema = ImpressionSchema.load(os.path.join(data, "schema.json"))
        naive = rows_per_second(make_naive_dataset(files, schema, args.batch_size))
        vec = rows_per_second(make_dataset(files, schema, args.batch_size, shuffle=False))
        vec_shuf = rows_per_second(make_dataset(files, schema, args.batch_size, seed=0))
    print(f"{'pipeline':<34}{'rows/s':>12}{'vs naive':>10}")
    print(f"{'naive map(parse_single) -> batch':<34}{naive:>12,.0f}{1.0:>9.1f}x")
    print(f"{'vectorised, no shuffle':<34}{vec:>12,.0f}{vec / naive:>9.1f}x")
    print(f"{'vectorised, block shuffle 16k rows':<34}{vec_shuf:>12,.0f}{vec_shuf / naive:>9.1f}x")


if __name__ == "__main__":
    main()
