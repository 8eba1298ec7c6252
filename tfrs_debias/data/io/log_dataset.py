"""Writing a complete impression-log dataset: splits, oracle twins, schema and truth."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import check_writable, remove_tree
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.data.io.writer import write_examples
from tfrs_debias.schema import ImpressionSchema

#: Splits a dataset directory can hold: ``full_*`` are the full-information twins (the
#: same slates, every impression examined: the ceiling), ``oracle_*`` the
#: same-click-volume twins without a position effect (not a ceiling), ``examined_*``
#: the logs restricted to the impressions that were examined (the bound on what
#: debiasing the logs can reach), ``random_slice`` a small randomly exposed sample
#: (ratings data).
SPLITS = (
    "train",
    "valid",
    "test",
    "random_slice",
    "full_train",
    "full_valid",
    "oracle_train",
    "oracle_valid",
    "examined_train",
    "examined_valid",
)


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


#: Files of a dataset directory besides the split shards.
DATASET_FILES = ("schema.json", "truth.npz", "truth.json", "popularity.npz")


def _dataset_files(folder: str) -> list[str]:
    if not tf.io.gfile.isdir(folder):
        return []
    names = tf.io.gfile.listdir(folder)
    return [
        n
        for n in names
        if n in DATASET_FILES or (n.split("-", 1)[0] in SPLITS and ".tfrecord" in n)
    ]


def check_dataset_target(out_dir: str, overwrite: bool = False) -> None:
    """Raises ``FileExistsError`` when ``out_dir`` already holds a dataset (its
    ``schema.json``) and not ``overwrite``. Commands call it before they compute a
    dataset, so a long simulation or conversion does not run only to be refused."""
    if tf.io.gfile.exists(os.path.join(out_dir, "schema.json")) and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset; pass --overwrite to replace it")


@contextlib.contextmanager
def staged_dataset(out_dir: str, overwrite: bool = False) -> Iterator[str]:
    """A folder to write a whole dataset into; it replaces ``out_dir``'s dataset only
    when the block completes. On any error the staging folder is removed and
    ``out_dir`` is as it was: never half-written. An existing dataset (its
    ``schema.json``) is an error unless ``overwrite``, which removes the old dataset's
    files (shards, schema, truth, popularity) and leaves other files alone.

    Checked before anything is computed, so a long write fails at once on an existing
    dataset or a folder that cannot be written."""
    check_dataset_target(out_dir, overwrite)
    stage = os.path.join(out_dir, f".staging-{os.getpid()}")
    remove_tree(stage)
    check_writable(stage)
    try:
        yield stage
        new = set(_dataset_files(stage))
        for name in _dataset_files(out_dir):
            if name not in new:
                tf.io.gfile.remove(os.path.join(out_dir, name))
        for name in sorted(new):  # shards first, schema.json (what marks a dataset) last
            if name != "schema.json":
                tf.io.gfile.rename(
                    os.path.join(stage, name), os.path.join(out_dir, name), overwrite=True
                )
        if "schema.json" in new:
            tf.io.gfile.rename(
                os.path.join(stage, "schema.json"),
                os.path.join(out_dir, "schema.json"),
                overwrite=True,
            )
    finally:
        remove_tree(stage)


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

    An existing dataset in ``out_dir`` is an error unless ``overwrite``; the dataset is
    written into a staging folder and moved into place when complete (`staged_dataset`).
    """
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected some of {SPLITS}")
    written = {}
    with staged_dataset(out_dir, overwrite) as stage:
        for name, columns in splits.items():
            shards = num_shards if name.endswith("train") else 1
            paths = write_examples(
                columns,
                schema,
                stage,
                name,
                num_shards=shards,
                compression=compression,
                progress=progress,
            )
            written[name] = [os.path.join(out_dir, os.path.basename(p)) for p in paths]
        if truth is not None:
            truth.save(stage)
        schema.save(os.path.join(stage, "schema.json"))
    return written
