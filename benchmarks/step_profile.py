"""Where a training step's time goes: a `tf.profiler` trace of in-memory training steps
of one estimator (or the plain TFRS model), summed per op type and per op name.

The batches are parsed once and repeated from memory, so the figures are the model's
step alone (the input pipeline is `reader_throughput.py`'s and `training_throughput.py`'s
business). Times are CPU time summed over TensorFlow's threads, per step; on 2 cores a
step's wall time is about half the total.

Usage: python benchmarks/step_profile.py [--model position_debiased|...|plain]
       [--data DIR] [--steps 30] [--top 40] [--logdir DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile

import numpy as np
from plain_tfrs import PlainRanker

from tfrs_debias.backend import keras, tf
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig, make_dataset
from tfrs_debias.data.io.files import expand_files
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training import build_optimizer, build_vocabularies


def op_times(logdir: str) -> collections.Counter:
    """``{op name: microseconds}`` summed over the trace's TensorFlow op threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = tf.io.gfile.glob(os.path.join(logdir, "plugins/profile/*/*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with tf.io.gfile.GFile(sorted(paths)[-1], "rb") as f:
        space.ParseFromString(f.read())
    times: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith(("tf_Compute", "tf_numa", "tf_inter")):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "?")
                if not name.startswith("ExecutorState"):  # the enclosing span
                    times[name] += event.duration_ps / 1e6
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="position_debiased", help="an estimator name or 'plain'")
    p.add_argument("--data", help="dataset directory (default: simulate one in a temp dir)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--logdir", help="keep the trace here (TensorBoard's profile plugin)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or os.path.join(tmp, "data")
        if not args.data:
            ImpressionSimulator(SimulatorConfig(seed=0)).write(data, progress=False)
        schema = ImpressionSchema.load(os.path.join(data, "schema.json"))
        files = expand_files(os.path.join(data, "train-*"))
        vocab, _ = build_vocabularies(files, schema)
        batches = list(make_dataset(files, schema, args.batch_size, seed=0).take(8))
        stacked = tf.nest.map_structure(lambda *x: tf.stack(x), *batches)
        inputs = iter(tf.data.Dataset.from_tensor_slices(stacked).repeat().prefetch(2))
        if args.model == "plain":
            model = PlainRanker(np.union1d(vocab["user_id"], vocab["item_id"]), schema.tasks)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
        else:
            config = EstimatorConfig(model=args.model)
            model = build_estimator(schema, config, vocab)
            model.compile(optimizer=build_optimizer(config.optimizer, config.learning_rate))
        step = model.make_train_function()
        for _ in range(20):  # trace and warm up
            step(inputs)
        logdir = args.logdir or os.path.join(tmp, "trace")
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            logs = step(inputs)
        tf.nest.map_structure(lambda x: x.numpy(), logs)
        tf.profiler.experimental.stop()
        times = op_times(logdir)
    by_type: collections.Counter = collections.Counter()
    for name, us in times.items():
        by_type[name.split(":")[-1]] += us
    print(f"{args.model}: {sum(times.values()) / args.steps:,.0f} us of op time per step")
    print(f"\n{'op type':<40}{'us/step':>10}")
    for name, us in by_type.most_common(args.top):
        print(f"{name[:40]:<40}{us / args.steps:>10,.0f}")
    print(f"\n{'op':<90}{'us/step':>10}")
    for name, us in times.most_common(args.top):
        print(f"{name[:90]:<90}{us / args.steps:>10,.0f}")


if __name__ == "__main__":
    main()
