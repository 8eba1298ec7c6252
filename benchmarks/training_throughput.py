"""Training examples/s of each estimator vs the plain TFRS model a user would write, in
one run over the same TFRecords.

Ours: `make_dataset` (block shuffle, parse, the schema's checks on every batch) and the
default `EstimatorConfig` (LazyAdam). Plain: `plain_tfrs.PlainRanker` with Keras Adam
over `plain_tfrs.plain_dataset` (record shuffle, batch, parse); "plain TFRS + side" is
the same model also embedding the side features our estimators read (like for like).

Each model keeps one input iterator and one compiled train function for the whole run
(no per-window start-up), trains in interleaved windows of `--steps` steps after a
warm-up (the order rotated each round), and its examples/s is the median window. The
ratios are the median over rounds of each round's ratio to the plain model's window of
the same round: a host that slows down for a minute slows both sides of a ratio. Each
window starts after `--settle` idle seconds: the models' input pipelines run ahead in
background threads, and without the pause the pipeline of the model timed just before
refills its prefetch buffer inside the next model's window.

Usage: python benchmarks/training_throughput.py [--data DIR] [--windows 6] [--steps 40]
       [--models multi_task,position_debiased,factorized,anchored_factorized]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from plain_tfrs import PlainRanker, plain_dataset

from tfrs_debias.backend import keras, tf
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig, make_dataset
from tfrs_debias.data.io.files import expand_files
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training import build_optimizer, build_vocabularies

DEFAULT_MODELS = "multi_task,position_debiased,factorized,anchored_factorized"


class Runner:
    """One model, its persistent iterator and its train function."""

    def __init__(self, model: keras.Model, ds: tf.data.Dataset):
        self.model = model
        self.iterator = iter(ds)
        self.step = model.make_train_function()

    def run(self, steps: int, settle: float = 0.0) -> float:
        """Seconds for ``steps`` steps (the last step's outputs fetched), after
        ``settle`` seconds in which the other models' input pipelines refill their
        prefetch buffers (their background threads would otherwise run in this window)."""
        time.sleep(settle)
        start = time.perf_counter()
        for _ in range(steps):
            logs = self.step(self.iterator)
        tf.nest.map_structure(lambda x: x.numpy(), logs)
        return time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="dataset directory (default: simulate one in a temp dir)")
    p.add_argument("--models", default=DEFAULT_MODELS, help="our estimators to time")
    p.add_argument("--steps", type=int, default=40, help="training steps per window")
    p.add_argument("--windows", type=int, default=6, help="timed windows per model")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="idle seconds before each window (other pipelines refill their buffers)",
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tmp
        if not args.data:
            ImpressionSimulator(SimulatorConfig(seed=0)).write(data, progress=False)
        schema = ImpressionSchema.load(os.path.join(data, "schema.json"))
        files = expand_files(os.path.join(data, "train-*"))
        vocab, _ = build_vocabularies(files, schema)
        runners = {}
        for name in args.models.split(","):
            config = EstimatorConfig(model=name)
            model = build_estimator(schema, config, vocab)
            model.compile(optimizer=build_optimizer(config.optimizer, config.learning_rate))
            ds = make_dataset(files, schema, args.batch_size, seed=0, num_epochs=None)
            runners[name] = Runner(model, ds)
        ids = np.union1d(vocab["user_id"], vocab["item_id"])
        plain = PlainRanker(ids, schema.tasks)
        plain.compile(optimizer=keras.optimizers.Adam(1e-3))
        runners["plain TFRS"] = Runner(plain, plain_dataset(files, schema.tasks, args.batch_size))
        # Like for like: the same model reading the side features ours read.
        side = {
            f.name: f.num_values
            for f in schema.by_role("user_feature", "item_feature")
            if f.num_values
        }
        if side:
            plain_side = PlainRanker(ids, schema.tasks, side)
            plain_side.compile(optimizer=keras.optimizers.Adam(1e-3))
            ds = plain_dataset(files, schema.tasks, args.batch_size, side_features=tuple(side))
            runners["plain TFRS + side"] = Runner(plain_side, ds)
        for runner in runners.values():
            runner.run(10)  # trace, fill the shuffle buffers
        seconds = {name: [] for name in runners}
        names = list(runners)
        for k in range(args.windows):
            for name in names[k % len(names) :] + names[: k % len(names)]:
                seconds[name].append(runners[name].run(args.steps, args.settle))
    times = {n: np.array(s) for n, s in seconds.items()}
    rate = {n: args.steps * args.batch_size / float(np.median(s)) for n, s in times.items()}

    def ratio(name: str, base: str) -> float:
        return float(np.median(times[base] / times[name]))

    side = "plain TFRS + side" in times
    head = f"{'model':<22}{'examples/s':>12}{'vs plain TFRS':>15}"
    print(head + (f"{'vs plain + side':>17}" if side else ""))
    for name, r in rate.items():
        line = f"{name:<22}{r:>12,.0f}{ratio(name, 'plain TFRS'):>14.2f}x"
        print(line + (f"{ratio(name, 'plain TFRS + side'):>16.2f}x" if side else ""))


if __name__ == "__main__":
    main()
