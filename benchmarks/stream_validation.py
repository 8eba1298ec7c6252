"""Cost of checking every record in the input pipeline: examples/s with the schema's
value rules asserted on each batch (``make_dataset(check=True)``, the default) vs
without, in one run — for the reader alone and for training the default estimator.

Same data, batch size and pipeline otherwise. The VMs here are noisy, so the two
variants run in short interleaved windows after a warm-up, and each figure is the
median of its best half of windows. Target: checked >= 0.9x unchecked.

Usage: python benchmarks/stream_validation.py [--data DIR] [--windows 6] [--steps 15]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from tfrs_debias.backend import keras
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig, make_dataset
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema


def read_rate(files, schema, batch_size: int, check: bool) -> float:
    start, rows = time.perf_counter(), 0
    for batch in make_dataset(files, schema, batch_size, shuffle=False, check=check):
        rows += int(batch["item_id"].shape[0])
    return rows / (time.perf_counter() - start)


def train_rate(model, ds, steps: int, batch_size: int) -> float:
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def best_half(rates: list[float]) -> float:
    return float(np.median(sorted(rates)[len(rates) // 2 :]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="dataset directory (default: simulate one in a temp dir)")
    p.add_argument("--steps", type=int, default=15, help="training steps per window")
    p.add_argument("--windows", type=int, default=6, help="timed windows per variant")
    p.add_argument("--batch-size", type=int, default=4096)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tmp
        if not args.data:
            ImpressionSimulator(SimulatorConfig(seed=0)).write(data, progress=False)
        schema = ImpressionSchema.load(os.path.join(data, "schema.json"))
        files = os.path.join(data, "train-*")
        reads = {True: [], False: []}
        for _ in range(args.windows):
            for check in (False, True):
                reads[check].append(read_rate(files, schema, args.batch_size, check))
        models, datasets, trains = {}, {}, {True: [], False: []}
        for check in (False, True):
            keras.utils.set_random_seed(0)
            models[check] = build_estimator(schema, EstimatorConfig(model="position_debiased"))
            models[check].compile(optimizer=keras.optimizers.Adam(1e-3))
            datasets[check] = make_dataset(
                files, schema, args.batch_size, seed=0, num_epochs=None, check=check
            )
            train_rate(models[check], datasets[check], 5, args.batch_size)  # warm-up
        for _ in range(args.windows):
            for check in (False, True):
                rate = train_rate(models[check], datasets[check], args.steps, args.batch_size)
                trains[check].append(rate)
    print(f"{'pipeline':<28}{'unchecked ex/s':>16}{'checked ex/s':>14}{'ratio':>8}")
    for label, rates in (("read + parse", reads), ("train position_debiased", trains)):
        off, on = best_half(rates[False]), best_half(rates[True])
        print(f"{label:<28}{off:>16,.0f}{on:>14,.0f}{on / off:>7.2f}x")


if __name__ == "__main__":
    main()
