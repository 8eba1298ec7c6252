"""Rows/s of the library's vectorised reader vs the naive per-record pipeline.

Both read the same files in one run:
  naive:      TFRecordDataset -> map(parse_single_example) -> batch
  vectorised: tfrs_debias.data.make_dataset (batch -> parse_example -> prefetch),
              with and without its record shuffle buffer.

Prints rows/s (best of 3 passes) and CPU time per 4096 rows (all threads; steadier on
shared VMs, and what the model competes with when it trains on the same cores).

Usage: python benchmarks/reader_throughput.py [--data DIR] [--rows N] [--compression gzip]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from tfrs_debias.data import ImpressionSimulator, SimulatorConfig, make_dataset
from tfrs_debias.data.io.reader import make_naive_dataset
from tfrs_debias.schema import ImpressionSchema


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rows_per_second(ds, repeats: int = 3) -> tuple[float, float]:
    """(rows/s, CPU ms per 4096 rows) of reading ``ds`` to the end, the best of
    ``repeats`` passes. The CPU figure (all threads) is the steadier one on shared VMs,
    and the one that matters when the model trains on the same cores."""
    best, cpu = 0.0, float("inf")
    for _ in range(repeats):
        start, used, rows = time.perf_counter(), _cpu_seconds(), 0
        for batch in ds:
            rows += int(batch["user_id"].shape[0])
        best = max(best, rows / (time.perf_counter() - start))
        cpu = min(cpu, (_cpu_seconds() - used) * 1000 * 4096 / rows)
    return best, cpu


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
    print(f"{'pipeline':<36}{'rows/s':>10}{'vs naive':>10}{'CPU ms / 4096 rows':>20}")
    for name, (rate, cpu) in (
        ("naive map(parse_single) -> batch", naive),
        ("vectorised, no shuffle", vec),
        ("vectorised, block shuffle 16k rows", vec_shuf),
    ):
        print(f"{name:<36}{rate:>10,.0f}{rate / naive[0]:>9.1f}x{cpu:>20.1f}")


if __name__ == "__main__":
    main()
