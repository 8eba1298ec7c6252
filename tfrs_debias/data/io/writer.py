"""Writing impression logs as sharded (optionally gzip) TFRecord files of tf.train.Example."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm

from tfrs_debias.backend import tf
from tfrs_debias.data.io.checks import column_kind_problem, describe_value, value_problems
from tfrs_debias.schema import ImpressionSchema


def shard_name(prefix: str, index: int, num_shards: int, compression: str) -> str:
    suffix = ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}"


def check_columns(columns: Mapping[str, np.ndarray], schema: ImpressionSchema) -> int:
    """Checks ``columns`` hold every schema feature with valid values; returns the row count.

    Raises:
      ValueError: naming the column, and the first bad row and its value.
    """
    missing = [f.name for f in schema.features if f.name not in columns]
    if missing:
        raise ValueError(f"columns missing for schema features {missing}")
    lengths = {name: len(columns[name]) for name in schema.names}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    for feature in schema.features:
        values = np.asarray(columns[feature.name])
        if values.ndim != 1:
            raise ValueError(f"column '{feature.name}' must be 1-D, has shape {values.shape}")
        problem = column_kind_problem(feature, values)
        if problem:
            raise ValueError(problem)
        for bad, _, message in value_problems(feature, values):
            row = int(bad[0])
            raise ValueError(
                f"{message}: row {row} has {describe_value(values, row)} "
                f"({bad.size} bad rows in all)"
            )
    return next(iter(lengths.values()), 0)


def _example_bytes(columns: dict[str, list], kinds: dict[str, str], row: int) -> bytes:
    example = tf.train.Example()
    feature = example.features.feature
    for name, values in columns.items():
        kind = kinds[name]
        if kind == "int64":
            feature[name].int64_list.value.append(values[row])
        elif kind == "float32":
            feature[name].float_list.value.append(values[row])
        else:
            feature[name].bytes_list.value.append(values[row])
    return example.SerializeToString()


def write_examples(
    columns: Mapping[str, np.ndarray],
    schema: ImpressionSchema,
    out_dir: str,
    prefix: str,
    num_shards: int = 1,
    compression: str = "GZIP",
    overwrite: bool = False,
    progress: bool = True,
) -> list[str]:
    """Writes one row per impression to ``out_dir/prefix-SSSSS-of-NNNNN.tfrecord[.gz]``.

    Rows are checked against ``schema`` before anything is written. Shards are
    written under temporary names and renamed only once all are complete, so a
    failure leaves no partial file and earlier files in place.

    Args:
      columns: feature name -> 1-D array, one entry per impression.
      schema: the features to write (columns not in the schema are ignored).
      out_dir: created if needed.
      prefix: file name prefix, e.g. ``"train"``.
      num_shards: rows are dealt to shards in contiguous blocks.
      compression: ``"GZIP"`` or ``""``.
      overwrite: replace existing shards with this prefix. Defaults to False, which
        raises ``FileExistsError`` if any exist.
      progress: show a progress bar.

    Returns:
      The written file paths.
    """
    if compression not in ("GZIP", ""):
        raise ValueError(f"compression must be 'GZIP' or '', got {compression!r}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    num_rows = check_columns(columns, schema)
    tf.io.gfile.makedirs(out_dir)
    existing = sorted(tf.io.gfile.glob(os.path.join(out_dir, f"{prefix}-*-of-*.tfrecord*")))
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]} exists; pass --overwrite (overwrite=True) to replace '{prefix}'"
        )

    kinds = {f.name: f.dtype for f in schema.features}
    lists: dict[str, list] = {}
    for f in schema.features:
        values = np.asarray(columns[f.name])
        if f.dtype == "string":
            lists[f.name] = [v.encode() if isinstance(v, str) else bytes(v) for v in values]
        elif f.dtype == "float32":
            lists[f.name] = values.astype(np.float32).tolist()
        else:
            lists[f.name] = values.astype(np.int64).tolist()

    bounds = np.linspace(0, num_rows, num_shards + 1).astype(int)
    finals = [
        os.path.join(out_dir, shard_name(prefix, i, num_shards, compression))
        for i in range(num_shards)
    ]
    temps = [os.path.join(out_dir, f".{os.path.basename(p)}.tmp-{os.getpid()}") for p in finals]
    options = tf.io.TFRecordOptions(compression_type=compression)
    bar = tqdm(total=num_rows, desc=f"write {prefix}", unit="rows", disable=not progress)
    try:
        for shard, tmp in enumerate(temps):
            with tf.io.TFRecordWriter(tmp, options) as writer:
                for row in range(bounds[shard], bounds[shard + 1]):
                    writer.write(_example_bytes(lists, kinds, row))
                    if (row + 1) % 8192 == 0:
                        bar.update(8192)
        bar.update(num_rows - bar.n)
    except BaseException:
        for tmp in temps:
            if tf.io.gfile.exists(tmp):
                tf.io.gfile.remove(tmp)
        raise
    finally:
        bar.close()
    for old in existing:
        if old not in finals:
            tf.io.gfile.remove(old)
    for tmp, final in zip(temps, finals, strict=True):
        tf.io.gfile.rename(tmp, final, overwrite=True)
    return finals
