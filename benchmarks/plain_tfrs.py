"""The plain TFRS ranking model and input pipeline a user would otherwise write (as in
the TFRS tutorials): the baseline the speed benchmarks compare against.

IntegerLookup + Embedding 32 for user and item, Dense 256-64, one logit per task,
`tfrs.tasks.Ranking` (BCE, no metrics), Keras Adam 1e-3; the input pipeline reads the
same TFRecords, shuffles records, batches, then ``parse_example``.
"""

from __future__ import annotations

import importlib

import numpy as np

from tfrs_debias.backend import keras, tf

# Imported after tfrs_debias.backend, which sets up Keras 2 as TFRS requires.
tfrs = importlib.import_module("tensorflow_recommenders")


class PlainRanker(tfrs.Model):
    """``side_features``: ``{name: number of values}`` of int side features embedded
    (32 wide) beside the ids, for a like-for-like comparison with our estimators, which
    read them; empty (the default) is the tutorial model."""

    def __init__(self, ids: np.ndarray, tasks=("click", "like"), side_features=None):
        super().__init__()
        self.tasks = tuple(tasks)
        self.lookup = {k: keras.layers.IntegerLookup(vocabulary=ids) for k in ("user", "item")}
        self.embed = {k: keras.layers.Embedding(len(ids) + 1, 32) for k in ("user", "item")}
        self.side = dict(side_features or {})
        self.side_embed = {k: keras.layers.Embedding(n + 1, 32) for k, n in self.side.items()}
        self.tower = keras.Sequential(
            [
                keras.layers.Dense(256, "relu"),
                keras.layers.Dense(64, "relu"),
                keras.layers.Dense(len(self.tasks)),
            ]
        )
        self.task = tfrs.tasks.Ranking(loss=keras.losses.BinaryCrossentropy(from_logits=True))

    def call(self, features):
        x = [self.embed[k](self.lookup[k](features[f"{k}_id"])) for k in ("user", "item")]
        x += [self.side_embed[k](tf.clip_by_value(features[k], 0, n)) for k, n in self.side.items()]
        return self.tower(tf.concat(x, axis=-1))

    def compute_loss(self, features, training=False):
        logits = self(features)
        return tf.add_n(
            [
                self.task(tf.cast(features[t][:, None], tf.float32), logits[:, i : i + 1])
                for i, t in enumerate(self.tasks)
            ]
        )


def plain_dataset(
    files: list[str],
    tasks=("click", "like"),
    batch_size: int = 4096,
    seed: int = 0,
    side_features=(),
) -> tf.data.Dataset:
    """Records shuffled (16k buffer), batched, then parsed: ids, labels and the named
    int ``side_features``."""
    names = ("user_id", "item_id", *side_features, *tasks)
    spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in names}
    compression = "GZIP" if files[0].endswith(".gz") else ""
    return (
        tf.data.TFRecordDataset(files, compression_type=compression)
        .repeat()
        .shuffle(16384, seed=seed)
        .batch(batch_size)
        .map(lambda r: tf.io.parse_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def main(argv=None) -> None:
    """Train the plain model one epoch on ``--data`` and save it to ``--out``, printing
    one JSON line of phase times and peak RSS (what `scaling.py` runs for the baseline)."""
    import argparse
    import glob
    import json
    import os
    import resource
    import time

    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=4096)
    args = p.parse_args(argv)

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    files = sorted(glob.glob(os.path.join(args.data, "train-*")))
    report = {}
    start = time.perf_counter()
    spec = {k: tf.io.FixedLenFeature([], tf.int64) for k in ("user_id", "item_id")}
    ids, rows = np.zeros(0, np.int64), 0
    records = tf.data.TFRecordDataset(files).batch(65536)
    for batch in records.map(lambda r: tf.io.parse_example(r, spec)):
        ids = np.union1d(ids, np.union1d(batch["user_id"].numpy(), batch["item_id"].numpy()))
        rows += int(batch["user_id"].shape[0])
    report["vocabulary_s"], report["vocabulary_peak_mb"] = time.perf_counter() - start, peak_mb()
    model = PlainRanker(ids)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(
        plain_dataset(files, batch_size=args.batch_size),
        steps_per_epoch=-(-rows // args.batch_size),
        epochs=1,
        verbose=0,
    )
    report["fit_s"], report["fit_peak_mb"] = time.perf_counter() - start, peak_mb()
    serve = tf.function(
        lambda user_id, item_id: {"logits": model({"user_id": user_id, "item_id": item_id})}
    ).get_concrete_function(
        tf.TensorSpec([None], tf.int64, "user_id"), tf.TensorSpec([None], tf.int64, "item_id")
    )
    start = time.perf_counter()
    tf.saved_model.save(model, args.out, signatures=serve)
    report["export_s"], report["export_peak_mb"] = time.perf_counter() - start, peak_mb()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
