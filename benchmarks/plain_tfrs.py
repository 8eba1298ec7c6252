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
    def __init__(self, ids: np.ndarray, tasks=("click", "like")):
        super().__init__()
        self.tasks = tuple(tasks)
        self.lookup = {k: keras.layers.IntegerLookup(vocabulary=ids) for k in ("user", "item")}
        self.embed = {k: keras.layers.Embedding(len(ids) + 1, 32) for k in ("user", "item")}
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
    files: list[str], tasks=("click", "like"), batch_size: int = 4096, seed: int = 0
) -> tf.data.Dataset:
    """Records shuffled (16k buffer), batched, then parsed: ids and labels only."""
    spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in ("user_id", "item_id", *tasks)}
    compression = "GZIP" if files[0].endswith(".gz") else ""
    return (
        tf.data.TFRecordDataset(files, compression_type=compression)
        .repeat()
        .shuffle(16384, seed=seed)
        .batch(batch_size)
        .map(lambda r: tf.io.parse_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
