"""`PopularityFactors`: item popularity and user activity factors (PreRec, arXiv 2310.19251).

For each item j, ``T_j`` = its interactions (positive labels of one task) in a window,
and ``F_j^(p) = T_j / (mean_i T_i^p)^(1/p)`` for p = 1..4: counts normalised by power
means of all items' counts in the same window, so the factor is comparable across
domains and traffic volumes. The same construction over users gives activity factors.
Without a timestamp feature the window is the whole training set; with one, records
are bucketed into windows of ``window_seconds`` and each record gets the factors of
its own window. The factor 1.0 (an item as popular as the power mean) is the neutral
value the serving-time intervention sets.

`add_popularity_features` rewrites a dataset directory's splits with the factors as
``popularity`` features (``item_pop_p1..p4``, ``user_act_p1..p4``), counted on the
training split only, and saves the factors and the extended schema beside them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Sequence

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.log_dataset import staged_dataset
from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.data.io.writer import write_examples
from tfrs_debias.schema import Feature, ImpressionSchema

POWERS = (1, 2, 3, 4)


def power_mean_factors(counts: np.ndarray, powers: Sequence[int] = POWERS) -> np.ndarray:
    """``[n, len(powers)]``: ``counts / (mean(counts^p))^(1/p)`` per power (0 if all zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.zeros((len(counts), len(powers)))
    for k, p in enumerate(powers):
        norm = np.mean(counts**p) ** (1.0 / p) if counts.size else 0.0
        out[:, k] = counts / norm if norm > 0 else 0.0
    return out


def feature_names(prefix: str, powers: Sequence[int] = POWERS) -> list[str]:
    return [f"{prefix}_p{p}" for p in powers]


@dataclasses.dataclass
class PopularityFactors:
    """Factors per (window, id) for items and users."""

    item_ids: np.ndarray
    item_windows: np.ndarray
    item_factors: np.ndarray
    user_ids: np.ndarray
    user_windows: np.ndarray
    user_factors: np.ndarray
    window_seconds: int | None = None
    powers: tuple[int, ...] = POWERS

    @classmethod
    def from_columns(
        cls,
        columns: dict[str, np.ndarray],
        schema: ImpressionSchema,
        task: str | None = None,
        timestamp: str | None = None,
        window_seconds: int = 86_400,
    ) -> PopularityFactors:
        task = task or schema.tasks[0]
        positive = np.asarray(columns[task]) > 0
        windows = _windows(columns, timestamp, window_seconds)
        item = cls._count(columns[schema.item_id.name][positive], windows[positive])
        user = cls._count(columns[schema.user_id.name][positive], windows[positive])
        # (ids, windows, factors) for items, then for users
        return cls(*item, *user, window_seconds if timestamp else None)  # type: ignore[call-arg]

    @staticmethod
    def _count(ids: np.ndarray, windows: np.ndarray):
        if ids.size == 0:
            return np.array([], ids.dtype), np.array([], np.int64), np.zeros((0, len(POWERS)))
        keys, counts = np.unique(
            np.stack([windows, ids.astype(np.int64)]), axis=1, return_counts=True
        )
        factors = np.zeros((keys.shape[1], len(POWERS)))
        for w in np.unique(keys[0]):
            sel = keys[0] == w
            factors[sel] = power_mean_factors(counts[sel])
        return keys[1], keys[0], factors

    def lookup(self, kind: str, ids: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """``[n, len(powers)]`` factors of ``ids`` in ``windows``; 0 for unseen ids."""
        keys_id = getattr(self, f"{kind}_ids")
        keys_w = getattr(self, f"{kind}_windows")
        table = getattr(self, f"{kind}_factors")
        out = np.zeros((len(ids), len(self.powers)))
        if len(keys_id) == 0:
            return out
        key = keys_w.astype(np.int64) * (1 << 40) + keys_id.astype(np.int64)
        order = np.argsort(key)
        query = windows.astype(np.int64) * (1 << 40) + np.asarray(ids).astype(np.int64)
        pos = np.clip(np.searchsorted(key[order], query), 0, len(key) - 1)
        hit = key[order][pos] == query
        out[hit] = table[order][pos[hit]]
        return out

    def save(self, path: str) -> None:
        buffer = io.BytesIO()  # through tf.io.gfile, like the other dataset files
        arrays = {k: v for k, v in dataclasses.asdict(self).items() if isinstance(v, np.ndarray)}
        np.savez_compressed(
            buffer,
            **arrays,  # type: ignore[arg-type]  # (numpy's stubs reject **arrays)
            meta=json.dumps({"window_seconds": self.window_seconds, "powers": list(self.powers)}),
        )
        with tf.io.gfile.GFile(path, "wb") as fh:
            fh.write(buffer.getvalue())


def _windows(columns: dict, timestamp: str | None, window_seconds: int) -> np.ndarray:
    n = len(next(iter(columns.values())))
    if not timestamp:
        return np.zeros(n, np.int64)
    return np.asarray(columns[timestamp], np.int64) // int(window_seconds)


def add_popularity_features(
    data_dir: str,
    out_dir: str,
    task: str | None = None,
    timestamp: str | None = None,
    window_seconds: int = 86_400,
    overwrite: bool = False,
    progress: bool = True,
) -> ImpressionSchema:
    """Writes ``out_dir`` = ``data_dir``'s splits plus popularity / activity factors
    (counted on ``train`` only), ``popularity.npz`` and the extended schema. The truth
    file, if any, is copied over."""
    source, target = LogDirectory(data_dir), LogDirectory(out_dir)
    schema = ImpressionSchema.load(source.schema_path)
    if timestamp and timestamp not in schema:
        raise ValueError(f"timestamp feature {timestamp!r} is not in the schema")
    if os.path.abspath(out_dir) == os.path.abspath(data_dir):
        raise ValueError("write the extended dataset to another directory")
    names = feature_names("item_pop") + feature_names("user_act")
    clash = [n for n in names if n in schema]
    if clash:
        raise ValueError(f"{data_dir} already has popularity features {clash}")
    extended = schema.replace(
        add=[Feature(n, "float32", "popularity", neutral_value=1.0) for n in names]
    )
    # Everything lands in a staging folder moved into place at the end: a bad record
    # (named by read_columns) or a full disk leaves out_dir as it was.
    with staged_dataset(out_dir, overwrite) as stage:
        train = read_columns(source.require("train"), schema)
        if not len(train.get(schema.item_id.name, ())):
            raise ValueError(f"{data_dir}: the train split has no records")
        factors = PopularityFactors.from_columns(train, schema, task, timestamp, window_seconds)
        for split in source.splits:
            files = source.files(split)
            cols = read_columns(files, schema)
            if not cols:
                raise ValueError(f"{data_dir}: the {split} split has no records")
            windows = _windows(cols, timestamp, window_seconds)
            item = factors.lookup("item", cols[schema.item_id.name], windows)
            user = factors.lookup("user", cols[schema.user_id.name], windows)
            for k, name in enumerate(feature_names("item_pop")):
                cols[name] = item[:, k].astype(np.float32)
            for k, name in enumerate(feature_names("user_act")):
                cols[name] = user[:, k].astype(np.float32)
            write_examples(
                cols,
                extended,
                stage,
                split,
                num_shards=len(files),
                compression="",
                progress=progress,
            )
        factors.save(os.path.join(stage, os.path.basename(target.popularity_path)))
        truth = source.truth()
        if truth is not None:  # candidates get the factors of the last window
            last = int(factors.item_windows.max()) if factors.item_windows.size else 0
            cands = truth.candidates.reshape(-1)
            item = factors.lookup("item", cands, np.full(cands.size, last))
            user = factors.lookup("user", truth.users, np.full(truth.users.size, last))
            for k, name in enumerate(feature_names("item_pop")):
                truth.item_features[name] = (
                    item[:, k].reshape(truth.candidates.shape).astype(np.float32)
                )
            for k, name in enumerate(feature_names("user_act")):
                truth.user_features[name] = user[:, k].astype(np.float32)
            truth.save(stage)
        extended.save(os.path.join(stage, "schema.json"))
    return extended
