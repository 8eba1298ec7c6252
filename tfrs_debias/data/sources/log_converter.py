"""`LogConverter`: impression logs as people have them (CSV, JSON Lines, Parquet) ->
sharded TFRecord splits + ``schema.json``, ready for ``validate`` / ``train``.

Two shapes of input:

* **one row per impression**: columns for the user, the item, the labels, the rank and
  other bias features (device, surface), a request id, a logged propensity, side
  features. A `ColumnMapping` says which column plays which role.
* **one row per slate** (search and feed logs: a page, a query session): a list of the
  shown items in rank order, and the clicked items or the clicked ranks as a list.
  Each shown item becomes one impression with its 0-based ``position`` and the label
  (1 if clicked); the row's other mapped columns (user, device, ...) are repeated.

Lists in CSV cells are written ``3 7 9``, ``3,7,9``, ``3|7|9`` or ``[3, 7, 9]``; in JSON
Lines and Parquet they are lists. Column dtypes are inferred (integers stay int64,
anything else is a string; propensities are floats, labels 0/1 or true/false). Rows
are dealt to train/valid/test by a hash of the request id (else the user id), so a
slate is never split. Every problem names the file, the line (row for Parquet) and
the column.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfrs_debias.data.io.files import expand_files
from tfrs_debias.data.io.log_dataset import write_log_dataset
from tfrs_debias.data.io.row_files import FORMATS, ConversionError, read_rows
from tfrs_debias.schema import Feature, ImpressionSchema

_LIST_SPLIT = re.compile(r"[\s,;|]+")
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def _named(spec: str) -> tuple[str, str]:
    """``"name=source"`` -> (feature name, input column); ``"col"`` -> (col, col)."""
    name, sep, source = spec.partition("=")
    return (name.strip(), source.strip()) if sep else (spec.strip(), spec.strip())


@dataclasses.dataclass(frozen=True)
class ColumnMapping:
    """Which input column plays which role; each entry is ``COLUMN`` or
    ``FEATURE=COLUMN`` (the feature is named as given, read from that column).

    Args:
      user_id, item_id: the id columns (in slate mode, ``item_id`` names the feature of
        the shown items; the items come from ``slate_items``).
      labels: label columns, one task each (impression rows).
      position: the rank column (impression rows); stored 0-based as an int64 bias
        feature (see ``one_based``).
      bias: other bias columns (device, surface, ...).
      request_id: the request / page / session id (slate rows get their row number
        when it is not given).
      propensity: a logged propensity column (float in (0, 1]).
      user_features, item_features: side feature columns.
      slate_items: slate rows: the column listing the shown items in rank order.
      clicked_items: slate rows: the column listing the clicked items.
      clicked_ranks: slate rows: the column listing the clicked ranks.
      slate_label: slate rows: the name of the label. Defaults to ``"click"``.
      one_based: ranks in the input start at 1 (``position`` / ``clicked_ranks``).
    """

    user_id: str = "user_id"
    item_id: str = "item_id"
    labels: tuple[str, ...] = ()
    position: str | None = None
    bias: tuple[str, ...] = ()
    request_id: str | None = None
    propensity: str | None = None
    user_features: tuple[str, ...] = ()
    item_features: tuple[str, ...] = ()
    slate_items: str | None = None
    clicked_items: str | None = None
    clicked_ranks: str | None = None
    slate_label: str = "click"
    one_based: bool = False

    def __post_init__(self) -> None:
        if self.is_slates:
            if (self.clicked_items is None) == (self.clicked_ranks is None):
                raise ValueError("slate rows need exactly one of clicked_items or clicked_ranks")
            if self.labels or self.position:
                raise ValueError("slate rows take their labels and positions from the lists")
        elif not self.labels:
            raise ValueError("impression rows need at least one label column")
        names = [n for n, _, _ in self.scalar_columns()]
        if self.is_slates:
            names += [_named(self.item_id)[0], "position", self.slate_label]
            names += [] if self.request_id else ["request_id"]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature names used twice: {dup}")

    @property
    def is_slates(self) -> bool:
        return self.slate_items is not None

    def scalar_columns(self) -> list[tuple[str, str, str]]:
        """``[(feature, column, role)]`` read as one value per input row."""
        out = [(*_named(self.user_id), "user_id")]
        if not self.is_slates:
            out.append((*_named(self.item_id), "item_id"))
            out += [(*_named(c), "label") for c in self.labels]
            if self.position:
                out.append((*_named(self.position), "position"))
        out += [(*_named(c), "bias") for c in self.bias]
        if self.request_id:
            out.append((*_named(self.request_id), "request_id"))
        if self.propensity:
            out.append((*_named(self.propensity), "propensity"))
        out += [(*_named(c), "user_feature") for c in self.user_features]
        out += [(*_named(c), "item_feature") for c in self.item_features]
        return [(name, column, role) for name, column, role in out]


def _parse_list(value: Any, where: str, column: str) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [p.strip("'\"") for p in _LIST_SPLIT.split(text) if p.strip("'\"")]
    raise ConversionError(f"{where}, column '{column}': expected a list, got {value!r}")


def _label(value: Any, where: str, column: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise ConversionError(f"{where}, column '{column}': label must be 0 or 1, got {value!r}")


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


class LogConverter:
    """Converts files of impression or slate rows into a dataset folder; see the
    module docstring.

    Args:
      mapping: which column plays which role.
      valid_fraction, test_fraction: shares of requests (else users) dealt to the
        ``valid`` and ``test`` splits by a hash of their id. Defaults to 0.1 each.
      fmt: ``"csv"``, ``"jsonl"``, ``"parquet"`` or ``"auto"`` (by file name).
      seed: salts the split hash (another seed, another split). Defaults to 0.
    """

    def __init__(
        self,
        mapping: ColumnMapping,
        valid_fraction: float = 0.1,
        test_fraction: float = 0.1,
        fmt: str = "auto",
        seed: int = 0,
    ):
        if fmt not in (*FORMATS, "auto"):
            raise ValueError(f"format must be one of {FORMATS} or auto, got {fmt!r}")
        if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
            raise ValueError("valid and test fractions must be >= 0 and sum to < 1")
        self.mapping = mapping
        self.valid_fraction = valid_fraction
        self.test_fraction = test_fraction
        self.fmt = fmt
        self.seed = int(seed)

    # -- rows -> columns ---------------------------------------------------------------
    def _value(self, record: dict, column: str, where: str) -> Any:
        if column not in record:
            raise ConversionError(f"{where}: no column '{column}' (columns: {sorted(record)})")
        value = record[column]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ConversionError(f"{where}, column '{column}': empty value")
        if isinstance(value, float) and not np.isfinite(value):
            raise ConversionError(f"{where}, column '{column}': {value} is not finite")
        return value.strip() if isinstance(value, str) else value

    def _slate_impressions(self, record: dict, where: str, row: int) -> list[dict]:
        m = self.mapping
        assert m.slate_items is not None  # (slate mode)
        shown = _parse_list(self._value(record, m.slate_items, where), where, m.slate_items)
        if not shown:
            raise ConversionError(f"{where}, column '{m.slate_items}': empty slate")
        keys = [str(v) for v in shown]
        if m.clicked_items is not None:
            clicked = [str(v) for v in _parse_list(record.get(m.clicked_items) or [], where, "")]
            unknown = [c for c in clicked if c not in keys]
            if unknown:
                raise ConversionError(
                    f"{where}, column '{m.clicked_items}': clicked items {unknown[:5]} "
                    f"are not in the slate '{m.slate_items}'"
                )
            labels = [int(k in clicked) for k in keys]
        else:
            labels = [0] * len(keys)
            for value in _parse_list(record.get(m.clicked_ranks) or [], where, ""):
                rank = _integer(value)
                first = 1 if m.one_based else 0
                if rank is None or not first <= rank < len(keys) + first:
                    raise ConversionError(
                        f"{where}, column '{m.clicked_ranks}': clicked rank {value!r} is not "
                        f"a rank of the {len(keys)}-item slate ({'1' if first else '0'}-based)"
                    )
                labels[rank - first] = 1
        item = _named(m.item_id)[0]
        rows = []
        for position, (value, label) in enumerate(zip(shown, labels, strict=True)):
            rows.append({item: value, "position": position, m.slate_label: label})
        if not m.request_id:
            for r in rows:
                r["request_id"] = row
        return rows

    def columns(self, files: str | Sequence[str], progress: bool = True) -> dict[str, list]:
        """Reads every row of ``files`` into ``{feature: [values]}``, one entry per
        impression (values as read; see `schema`)."""
        m = self.mapping
        scalars = m.scalar_columns()
        out: dict[str, list] = {}
        bar = tqdm(desc="convert", unit="rows", disable=not progress)
        row = 0
        for path in expand_files(files):
            for where, record in read_rows(path, self.fmt):
                values = {}
                for name, column, role in scalars:
                    value = self._value(record, column, where)
                    if role == "label":
                        value = _label(value, where, column)
                    elif role == "position":
                        rank = _integer(value)
                        if rank is None or rank < (1 if m.one_based else 0):
                            raise ConversionError(
                                f"{where}, column '{column}': rank must be an integer "
                                f">= {1 if m.one_based else 0}, got {value!r}"
                            )
                        value = rank - (1 if m.one_based else 0)
                    elif role == "propensity":
                        try:
                            value = float(value)
                        except (TypeError, ValueError):
                            value = float("nan")
                        if not 0 < value <= 1:
                            raise ConversionError(
                                f"{where}, column '{column}': propensity must be in (0, 1], "
                                f"got {record[column]!r}"
                            )
                    values[name] = value
                impressions = (
                    [{**values, **r} for r in self._slate_impressions(record, where, row)]
                    if m.is_slates
                    else [values]
                )
                for imp in impressions:
                    for name, value in imp.items():
                        out.setdefault(name, []).append(value)
                row += 1
                bar.update(1)
        bar.close()
        if not row:
            raise ConversionError(f"no rows in {files}")
        return out

    # -- columns -> schema and arrays --------------------------------------------------
    def schema(self, columns: dict[str, list]) -> tuple[ImpressionSchema, dict[str, np.ndarray]]:
        """The schema of converted ``columns`` (integers stay int64, other values become
        strings) and the columns as typed arrays."""
        m = self.mapping
        roles = {name: role for name, _, role in m.scalar_columns()}
        if m.is_slates:
            roles.update({_named(m.item_id)[0]: "item_id", "position": "position"})
            roles[m.slate_label] = "label"
            roles.setdefault("request_id", "request_id")
        features, arrays = [], {}
        for name, values in columns.items():
            role = roles[name]
            if role in ("label", "position"):
                dtype = "int64"
            elif role == "propensity":
                dtype = "float32"
            else:
                ints = [_integer(v) for v in values]
                dtype = "int64" if all(i is not None for i in ints) else "string"
                if dtype == "int64":
                    values = ints
            if dtype == "int64":
                array = np.asarray(values, dtype=object)
                if any(not -(2**63) <= int(v) < 2**63 for v in array):
                    raise ConversionError(f"column of '{name}': a value does not fit in int64")
                array = array.astype(np.int64)
            elif dtype == "float32":
                array = np.asarray(values, np.float32)
            else:
                array = np.asarray([str(v) for v in values], dtype=object)
            arrays[name] = array
            features.append(Feature(name, dtype, "bias" if role == "position" else role))
        return ImpressionSchema(tuple(features)), arrays

    def split(self, schema: ImpressionSchema, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
        """Train/valid/test by a hash of the request id (else the user id)."""
        key = (schema.request_id or schema.user_id).name
        buckets = (
            np.asarray(
                [zlib.crc32(f"{self.seed}:{v}".encode()) % 10_000 for v in arrays[key]], np.int64
            )
            / 10_000.0
        )
        test = buckets < self.test_fraction
        valid = ~test & (buckets < self.test_fraction + self.valid_fraction)
        parts = {"train": ~test & ~valid, "valid": valid, "test": test}
        return {
            split: {k: v[mask] for k, v in arrays.items()}
            for split, mask in parts.items()
            if mask.any()
        }

    def convert(
        self,
        files: str | Sequence[str],
        out_dir: str,
        num_shards: int = 2,
        compression: str = "",
        overwrite: bool = False,
        progress: bool = True,
    ) -> tuple[ImpressionSchema, dict[str, list[str]]]:
        """Reads ``files`` and writes ``out_dir`` (splits, ``schema.json``); returns the
        schema and the written files per split."""
        columns = self.columns(files, progress=progress)
        schema, arrays = self.schema(columns)
        splits = self.split(schema, arrays)
        if "train" not in splits:
            raise ConversionError("no rows fall in the train split; lower the fractions")
        written = write_log_dataset(
            out_dir,
            schema,
            splits,
            None,
            num_shards=num_shards,
            compression=compression,
            overwrite=overwrite,
            progress=progress,
        )
        return schema, written
