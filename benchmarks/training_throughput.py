"""Training examples/s of each estimator vs the plain multi-task model, in one run.

Same simulated data, batch size, optimizer (Adam) and input pipeline for all. The VMs
here are noisy (throughput flips between two levels with host load), so models train in
short interleaved windows (round-robin) after a warm-up, and each model's figure is the
median of its best half of windows: noise hits every model alike.

Usage: python benchmarks/training_throughput.py [--data DIR] [--windows 8] [--steps 15]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from tfrs_debias.backend import keras
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig, make_dataset
from tfrs_debias.models import MODEL_NAMES, EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema


def build(name: str, schema) -> keras.Model:
    model = build_estimator(schema, EstimatorConfig(model=name))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def window_rate(model, ds, steps: int, batch_size: int) -> float:
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="dataset directory (default: simulate one in a temp dir)")
    p.add_argument("--steps", type=int, default=15, help="training steps per window")
    p.add_argument("--windows", type=int, default=8, help="timed windows per model")
    p.add_argument("--batch-size", type=int, default=4096)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tmp
        if not args.data:
            ImpressionSimulator(SimulatorConfig(seed=0)).write(data, progress=False)
        schema = ImpressionSchema.load(os.path.join(data, "schema.json"))
        files = os.path.join(data, "train-*")
        ds = make_dataset(files, schema, args.batch_size, seed=0, num_epochs=None)
        models = {name: build(name, schema) for name in MODEL_NAMES}
        for model in models.values():
            window_rate(model, ds, 5, args.batch_size)  # trace and warm up
        rates = {name: [] for name in MODEL_NAMES}
        for _ in range(args.windows):
            for name, model in models.items():
                rates[name].append(window_rate(model, ds, args.steps, args.batch_size))
    best = {n: float(np.median(sorted(r)[len(r) // 2 :])) for n, r in rates.items()}
    base = best["multi_task"]
    print(f"{'model':<22}{'examples/s':>12}{'vs multi_task':>15}")
    for name, rate in best.items():
        print(f"{name:<22}{rate:>12,.0f}{rate / base:>14.2f}x")


if __name__ == "__main__":
    main()
