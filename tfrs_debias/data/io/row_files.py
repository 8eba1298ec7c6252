"""`read_rows`: the rows of a CSV/TSV (with a header), JSON Lines or Parquet file, read
through ``tf.io.gfile`` (gzip detected), each with where it came from for messages;
`ConversionError` names the file, the line (row for Parquet) and what is wrong."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from tfrs_debias.backend import tf

FORMATS = ("csv", "jsonl", "parquet")


class ConversionError(ValueError):
    """A row that cannot be converted; the message names file, line and column."""


def _format_of(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    lower = path.lower()
    for ext, kind in ((".csv", "csv"), (".tsv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl")):
        if lower.endswith(ext) or lower.endswith(ext + ".gz"):
            return kind
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    raise ValueError(f"{path}: cannot tell the format from the name; pass --format")


def read_rows(path: str, fmt: str = "auto") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for each row of a CSV (with a header), JSON Lines or Parquet
    file read through ``tf.io.gfile``; ``where`` is ``"path: line N"`` (``row N`` for
    Parquet) for messages."""
    kind = _format_of(path, fmt)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with tf.io.gfile.GFile(path, "rb") as fh:
            data = io.BytesIO(fh.read())
        try:
            table = pq.ParquetFile(data)
        except Exception as err:  # pyarrow raises its own ArrowInvalid
            raise ConversionError(f"{path}: not a Parquet file ({err})") from None
        row = 0
        for batch in table.iter_batches(batch_size=65536):
            for record in batch.to_pylist():
                yield f"{path}: row {row}", record
                row += 1
        return
    with tf.io.gfile.GFile(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConversionError(f"{path}: not UTF-8 text ({err})") from None
    if kind == "jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConversionError(f"{path}: line {lineno}: not JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ConversionError(f"{path}: line {lineno}: not a JSON object")
            yield f"{path}: line {lineno}", record
        return
    delimiter = "\t" if path.lower().rstrip(".gz").endswith(".tsv") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    for record in reader:
        if None in record:
            raise ConversionError(f"{path}: line {reader.line_num}: more cells than the header")
        yield f"{path}: line {reader.line_num}", record
