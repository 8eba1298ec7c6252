"""The passes over the data before training: vocabularies of the open categorical
features (`build_vocabularies`, counting values in bounded memory with `ValueCounter`)
and row counts (`count_rows`), each parsing and checking every record."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import common_compression
from tfrs_debias.data.io.reader import apply_holdout, make_dataset
from tfrs_debias.schema import ImpressionSchema


def vocabulary_features(schema: ImpressionSchema) -> tuple:
    """Features whose vocabulary comes from the training data: ids, and categorical
    bias and side features the schema leaves open (strings without a ``vocabulary``,
    integers without ``num_values``). Floats are not categorical."""
    open_roles = ("bias", "user_feature", "item_feature")
    return schema.by_role("user_id", "item_id") + tuple(
        f
        for f in schema.by_role(*open_roles)
        if (f.dtype == "string" and f.vocabulary is None)
        or (f.dtype == "int64" and f.num_values is None)
    )


def build_vocabularies(
    files: Sequence[str], schema: ImpressionSchema, min_count: int = 1
) -> tuple[dict[str, list], int]:
    """Vocabularies of `vocabulary_features` (most frequent first; ids seen fewer than
    ``min_count`` times are left out and share the unknown index) and the number of
    rows, from one pass over ``files``. Values unseen here map to the unknown index in
    training, evaluation and serving.

    The pass parses every feature of ``schema`` and checks its rules, so a bad record
    fails here, before any training (run it inside `located_errors` to name it)."""
    feats = vocabulary_features(schema)
    counters = {f.name: ValueCounter() for f in feats}
    rows = 0
    for batch in make_dataset(files, schema, batch_size=65536, shuffle=False):
        for name, counter in counters.items():
            counter.add(batch[name].numpy())
        rows += int(next(iter(batch.values())).shape[0])
    vocabularies = {}
    for f in feats:
        values, counts = counters[f.name].result()
        keep = counts >= (min_count if f.role in ("user_id", "item_id") else 1)
        order = np.argsort(-counts[keep], kind="stable")
        vocab = values[keep][order]
        vocabularies[f.name] = [v.decode() if isinstance(v, bytes) else int(v) for v in vocab]
    return vocabularies, rows


class ValueCounter:
    """Counts of distinct values over a stream of batches in bounded memory: each
    batch is reduced to its distinct values and counts, and those are merged whenever
    the buffer outgrows the merged table (so memory is ~ the distinct values, not the
    rows: the vocabulary pass no longer holds every row's ids)."""

    def __init__(self, min_buffer: int = 1 << 22):
        self.values: np.ndarray | None = None
        self.counts = np.zeros(0, np.int64)
        self._buffer: list[tuple[np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self.min_buffer = min_buffer

    def add(self, values: np.ndarray) -> None:
        distinct, counts = np.unique(values, return_counts=True)
        self._buffer.append((distinct, counts))
        self._buffered += len(distinct)
        if self._buffered > max(self.min_buffer, 2 * len(self.counts)):
            self._merge()

    def _merge(self) -> None:
        parts = self._buffer + ([(self.values, self.counts)] if self.values is not None else [])
        if not parts:
            return
        values = np.concatenate([v for v, _ in parts])
        counts = np.concatenate([c for _, c in parts])
        self.values, inverse = np.unique(values, return_inverse=True)
        self.counts = np.bincount(inverse.reshape(-1), weights=counts).astype(np.int64)
        self._buffer, self._buffered = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct values sorted, their counts)``."""
        self._merge()
        if self.values is None:
            return np.array([]), np.zeros(0, np.int64)
        return self.values, self.counts


def count_rows(
    files: Sequence[str], holdout: str | None = None, schema: ImpressionSchema | None = None
) -> int:
    """Records in ``files`` (those ``holdout`` keeps); with a ``schema`` every record is
    parsed and checked on the way (a pass over validation files before training)."""
    if schema is not None:
        ds = make_dataset(files, schema, 65536, shuffle=False, holdout=holdout)
        return int(sum(int(next(iter(b.values())).shape[0]) for b in ds))
    ds = tf.data.TFRecordDataset(list(files), compression_type=common_compression(files))
    if holdout is not None:
        ds = apply_holdout(ds, holdout)
    ds = ds.batch(65536)
    return int(sum(int(b.shape[0]) for b in ds))
