"""Writing a complete impression-log dataset: splits, oracle twins, schema and truth."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.data.io.writer import write_examples
from tfrs_debias.schema import ImpressionSchema

#: Splits a dataset directory can hold: ``full_*`` are the full-information twins (the
#: same slates, every impression examined: the ceiling), ``oracle_*`` the
#: same-click-volume twins without a position effect (not a ceiling).
SPLITS = ("train", "valid", "test", "full_train", "full_valid", "oracle_train", "oracle_valid")


def flatten_slates(
    request_ids: np.ndarray,
    users: np.ndarray,
    devices: np.ndarray,
    items: np.ndarray,
    labels: Mapping[str, np.ndarray],
    extra: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per-request arrays (``[R]``) and per-slot arrays (``[R, L]``) -> one row per impression."""
    num_requests, slate_length = items.shape
    columns = {
        "request_id": np.repeat(request_ids, slate_length),
        "user_id": np.repeat(users, slate_length),
        "device": np.repeat(devices, slate_length),
        "position": np.tile(np.arange(slate_length, dtype=np.int64), num_requests),
        "item_id": items.reshape(-1),
    }
    columns.update({k: v.reshape(-1) for k, v in labels.items()})
    for name, values in (extra or {}).items():
        columns[name] = values.reshape(-1) if values.ndim == 2 else np.repeat(values, slate_length)
    return columns


def write_log_dataset(
    out_dir: str,
    schema: ImpressionSchema,
    splits: Mapping[str, Mapping[str, np.ndarray]],
    truth: GroundTruth | None,
    num_shards: int = 2,
    compression: str = "",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Writes ``out_dir/{split}-*.tfrecord[.gz]``, ``schema.json`` and ``truth.{npz,json}``.

    An existing dataset in ``out_dir`` is an error unless ``overwrite``; every file is
    written under a temporary name and renamed when complete.
    """
    if tf.io.gfile.exists(os.path.join(out_dir, "schema.json")) and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset; pass --overwrite to replace it")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected some of {SPLITS}")
    tf.io.gfile.makedirs(out_dir)
    written = {}
    for name, columns in splits.items():
        shards = num_shards if name.endswith("train") else 1
        written[name] = write_examples(
            columns,
            schema,
            out_dir,
            name,
            num_shards=shards,
            compression=compression,
            overwrite=overwrite,
            progress=progress,
        )
    if truth is not None:
        truth.save(out_dir)
    schema.save(os.path.join(out_dir, "schema.json"))
    return written
