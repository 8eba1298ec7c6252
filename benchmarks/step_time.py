"""Training step time against vocabulary size: Keras Adam vs `LazyAdam`, ours
(`position_debiased`) vs the plain TFRS ranking model, in one run.

Batches are synthetic and held in memory (no input pipeline), so the figure is the
optimizer step itself: Keras's Adam decays the moments of every embedding row on every
step (O(table)), LazyAdam only the rows in the batch. Each (model, optimizer, ids)
cell is timed in interleaved windows after a warm-up; the figure is the median window.

Usage: python benchmarks/step_time.py [--ids 10000 1000000] [--windows 5] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from plain_tfrs import PlainRanker

from tfrs_debias.backend import keras, tf
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training.lazy_adam import LazyAdam


def batches(num_ids: int, batch_size: int, count: int, seed: int = 0) -> tf.data.Dataset:
    """Zipf-like ids (a few popular, a long tail), random positions/devices/labels."""
    rng = np.random.default_rng(seed)
    n = batch_size * count

    def ids():
        return np.minimum(rng.zipf(1.2, n) - 1, num_ids - 1).astype(np.int64)

    data = {
        "user_id": ids(),
        "item_id": rng.permutation(num_ids)[ids()].astype(np.int64),
        "request_id": np.repeat(np.arange(n // 10 + 1), 10)[:n].astype(np.int64),
        "position": np.tile(np.arange(10), n // 10 + 1)[:n].astype(np.int64),
        "device": rng.choice(np.array([b"phone", b"desktop", b"tv"]), n),
        "click": (rng.random(n) < 0.1).astype(np.int64),
        "like": (rng.random(n) < 0.03).astype(np.int64),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).repeat()


class Stepper:
    """One model's compiled train function and persistent input iterator: a timed
    window is steps only (a ``fit`` call per window added its start-up, 100-300 ms,
    to 20 steps, and the figures jumped between ~15 and ~31 ms a step)."""

    def __init__(self, model, ds):
        self.step = model.make_train_function()
        self.iterator = iter(ds)

    def window_ms(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            logs = self.step(self.iterator)
        tf.nest.map_structure(lambda x: x.numpy(), logs)
        return 1000 * (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ids", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=20, help="steps per timed window")
    p.add_argument("--windows", type=int, default=5, help="timed windows per cell")
    args = p.parse_args(argv)
    schema = ImpressionSchema.default(tasks=("click", "like"))
    optimizers = {"adam": keras.optimizers.Adam, "lazy_adam": LazyAdam}
    cells = {}
    for n in args.ids:
        ids = np.arange(n, dtype=np.int64)
        vocab = {"user_id": ids, "item_id": ids, "device": ["phone", "desktop", "tv"]}
        ds = batches(n, args.batch_size, 16)
        for opt_name, opt in optimizers.items():
            for model_name in ("ours", "plain"):
                if model_name == "ours":
                    model = build_estimator(schema, EstimatorConfig(), vocab)
                else:
                    model = PlainRanker(ids)
                model.compile(optimizer=opt(1e-3))
                stepper = Stepper(model, ds)
                stepper.window_ms(5)  # trace, warm up
                cells[(n, opt_name, model_name)] = (stepper, [])
    for _ in range(args.windows):
        for stepper, times in cells.values():
            times.append(stepper.window_ms(args.steps))
    print(f"{'ids':>10}  {'optimizer':<10}{'ours ms':>9}{'plain ms':>10}{'ours/plain':>12}")
    median = {k: float(np.median(v[1])) for k, v in cells.items()}
    for n in args.ids:
        for opt_name in optimizers:
            ours, plain = median[(n, opt_name, "ours")], median[(n, opt_name, "plain")]
            print(f"{n:>10,}  {opt_name:<10}{ours:>9.1f}{plain:>10.1f}{ours / plain:>11.2f}x")
    small, large = min(args.ids), max(args.ids)
    for opt_name in optimizers:
        for model_name in ("ours", "plain"):
            ratio = median[(large, opt_name, model_name)] / median[(small, opt_name, model_name)]
            print(f"{model_name} {opt_name}: step at {large:,} ids / at {small:,} = {ratio:.2f}x")


if __name__ == "__main__":
    main()
