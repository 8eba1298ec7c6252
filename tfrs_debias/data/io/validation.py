"""`validate_files`: read every record of an impression log and report what is wrong.

Each problem names the file, the record index (0-based, within the file), the field
and what is wrong: missing feature, wrong type or number of values, label not 0/1,
position (or other categorical) out of range, NaN/inf, value outside a vocabulary,
bytes that are not a ``tf.train.Example``, and corrupted TFRecord framing.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
from google.protobuf.message import DecodeError

from tfrs_debias.backend import tf
from tfrs_debias.data.io.checks import describe_value, value_problems
from tfrs_debias.data.io.files import compression_of, expand_files
from tfrs_debias.schema import ImpressionSchema

_KIND_OF_DTYPE = {"int64": "int64_list", "float32": "float_list", "string": "bytes_list"}
_CHUNK = 16384


@dataclasses.dataclass(frozen=True)
class ValidationIssue:
    """One problem: where it is and what is wrong."""

    file: str
    record: int | None
    field: str | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.record is None else f"{self.file}: record {self.record}"
        return f"{where}: {self.message}"


@dataclasses.dataclass
class ValidationReport:
    """What `validate_files` found. ``issues`` keeps the first ``max_issues``."""

    files: list[str]
    records: int = 0
    bad_records: int = 0
    issues: list[ValidationIssue] = dataclasses.field(default_factory=list)
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    max_issues: int = 200
    #: categorical bias feature -> value -> records (a summary; never an error)
    value_counts: dict[str, collections.Counter] = dataclasses.field(default_factory=dict)
    #: feature -> its schema vocabulary, for saying which values are outside it
    vocabularies: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.counts

    @property
    def num_issues(self) -> int:
        return sum(self.counts.values())

    def add(self, issue: ValidationIssue) -> None:
        self.counts[(issue.kind, issue.field or "-")] += 1
        if len(self.issues) < self.max_issues:
            self.issues.append(issue)

    def summary(self) -> str:
        lines = [
            f"validated {self.records} records in {len(self.files)} files: "
            f"{self.bad_records} bad records, {self.num_issues} problems"
        ]
        for (kind, field), n in sorted(self.counts.items()):
            lines.append(f"  {kind:<14} {field:<16} {n}")
        lines.extend(self.value_summary())
        return "\n".join(lines)

    def value_summary(self, shown: int = 6) -> list[str]:
        """One line per categorical bias feature: its values and their shares; values
        outside a schema vocabulary, or seen in < 0.1% of records, are named (they map to
        the unknown index or get little training)."""
        lines = []
        for name, counter in sorted(self.value_counts.items()):
            total = sum(counter.values())
            if not total:
                continue
            top = ", ".join(f"{v} {n / total:.1%}" for v, n in counter.most_common(shown))
            more = f", ... ({len(counter)} values)" if len(counter) > shown else ""
            lines.append(f"  values of {name}: {top}{more}")
            vocab = self.vocabularies.get(name)
            if vocab is not None:
                outside = sorted(v for v in counter if v not in vocab)
                if outside:
                    lines.append(
                        f"    not in the schema vocabulary (mapped to unknown): {outside[:10]}"
                    )
            rare = sorted(v for v, n in counter.items() if n < 0.001 * total)
            if rare:
                lines.append(f"    rare (< 0.1% of records): {rare[:10]}")
        return lines

    def format(self) -> str:
        shown = [str(i) for i in self.issues]
        if self.num_issues > len(shown):
            shown.append(f"... {self.num_issues - len(shown)} more problems not shown")
        return "\n".join([*shown, self.summary()])

    def raise_if_invalid(self) -> None:
        if not self.ok:
            raise InvalidDataError(self)


class InvalidDataError(ValueError):
    """Raised for malformed impression logs; the message lists the problems found."""

    def __init__(self, report: ValidationReport, shown: int = 10):
        self.report = report
        lines = [str(i) for i in report.issues[:shown]]
        more = report.num_issues - len(lines)
        if more > 0:
            lines.append(f"... and {more} more (run `tfrs-debias validate` for all)")
        super().__init__("malformed impression log:\n" + "\n".join(lines))


def _records(path: str):
    """Yields raw records of one file; a corrupt stream raises ``tf.errors.DataLossError``
    at the first record that cannot be read (batches for speed, then one by one)."""
    ds = tf.data.TFRecordDataset(path, compression_type=compression_of(path))
    done = 0
    try:
        for batch in ds.batch(1024).as_numpy_iterator():
            yield from batch
            done += len(batch)
    except tf.errors.DataLossError:
        yield from ds.skip(done).as_numpy_iterator()


def _check_chunk(
    report: ValidationReport,
    schema: ImpressionSchema,
    path: str,
    first_record: int,
    columns: dict[str, list],
    present: dict[str, list[bool]],
    bad: set[int],
) -> None:
    for feature in schema.features:
        mask = np.asarray(present[feature.name], dtype=bool)
        if not mask.any():
            continue
        rows = np.flatnonzero(mask)
        kept = [columns[feature.name][r] for r in rows]
        if feature.role == "bias" and feature.dtype == "string":
            counter = report.value_counts.setdefault(feature.name, collections.Counter())
            counter.update(v.decode("utf-8", "replace") for v in kept)
        values = np.asarray(kept, dtype=object) if feature.dtype == "string" else np.asarray(kept)
        for idx, kind, message in value_problems(feature, values):
            for i in idx:
                record = first_record + int(rows[i])
                bad.add(record)
                value = describe_value(values, int(i))
                report.add(
                    ValidationIssue(path, record, feature.name, kind, f"{message}, got {value}")
                )


def validate_files(
    files: str | Sequence[str],
    schema: ImpressionSchema,
    max_issues: int = 200,
    max_records_per_file: int | None = None,
    stop_at_bad_file: bool = False,
) -> ValidationReport:
    """Reads every record of ``files`` and checks it against ``schema``.

    Args:
      files: glob(s) or paths of TFRecord files (gzip or plain, detected per file).
      schema: the features every record must have.
      max_issues: how many problems to keep in ``report.issues`` (all are counted).
      max_records_per_file: check only the first records of each file (a quick
        check before training). Defaults to None (every record).
      stop_at_bad_file: stop after the first file with a problem (used to name the
        record behind a failed read; see `located_errors`).

    Returns:
      A `ValidationReport`; ``report.ok`` is True when nothing is wrong.
    """
    paths = expand_files(files if isinstance(files, str) else list(files))
    report = ValidationReport(files=paths, max_issues=max_issues)
    report.vocabularies = {
        f.name: f.vocabulary for f in schema.bias_features if f.vocabulary is not None
    }
    for path in paths:
        record = -1
        bad: set[int] = set()
        columns: dict[str, list] = {f.name: [] for f in schema.features}
        present: dict[str, list[bool]] = {f.name: [] for f in schema.features}
        chunk_start = 0
        try:
            for record, raw in enumerate(_records(path)):
                if max_records_per_file is not None and record >= max_records_per_file:
                    record -= 1
                    break
                if record - chunk_start == _CHUNK:
                    _check_chunk(report, schema, path, chunk_start, columns, present, bad)
                    columns = {f.name: [] for f in schema.features}
                    present = {f.name: [] for f in schema.features}
                    chunk_start = record
                _check_record(report, schema, path, record, raw, columns, present, bad)
        except tf.errors.DataLossError as err:
            report.add(
                ValidationIssue(
                    path,
                    record + 1,
                    None,
                    "corrupt",
                    f"corrupted TFRecord data from here on ({err.message.splitlines()[0]})",
                )
            )
            bad.add(record + 1)
        _check_chunk(report, schema, path, chunk_start, columns, present, bad)
        report.records += record + 1
        report.bad_records += len(bad)
        if stop_at_bad_file and bad:
            break
    return report


def _check_record(report, schema, path, record, raw, columns, present, bad) -> None:
    try:
        example = tf.train.Example.FromString(raw)
    except DecodeError:
        report.add(ValidationIssue(path, record, None, "not_example", "not a tf.train.Example"))
        bad.add(record)
        for name in columns:
            columns[name].append(None)
            present[name].append(False)
        return
    feature_map = example.features.feature
    for feature in schema.features:
        value = None
        problem = None
        if feature.name not in feature_map:
            problem = ("missing", f"missing feature '{feature.name}'")
        else:
            proto = feature_map[feature.name]
            kind = proto.WhichOneof("kind")
            expected = _KIND_OF_DTYPE[feature.dtype]
            if kind != expected:
                problem = (
                    "wrong_type",
                    f"feature '{feature.name}' is {kind or 'empty'}, expected {expected} "
                    f"({feature.dtype})",
                )
            else:
                vals = getattr(proto, expected).value
                if len(vals) != 1:
                    problem = (
                        "wrong_length",
                        f"feature '{feature.name}' has {len(vals)} values, expected 1",
                    )
                else:
                    value = vals[0]
        if problem:
            report.add(ValidationIssue(path, record, feature.name, *problem))
            bad.add(record)
        columns[feature.name].append(value)
        present[feature.name].append(problem is None)


@contextlib.contextmanager
def located_errors(files: str | Sequence[str], schema: ImpressionSchema) -> Iterator[None]:
    """Runs a block that reads ``files`` (a ``make_dataset`` pipeline, Keras ``fit``);
    if reading fails on a record (a parse error, a schema rule asserted in the stream,
    corrupt framing), raises `InvalidDataError` naming the file, record and field,
    found by `validate_files` on the files (stopping at the first bad one). Other
    errors, and failures the validator cannot place, pass through unchanged."""
    try:
        yield
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError, UnicodeDecodeError) as err:
        # (TensorFlow's parse error quotes the record's bytes; non-UTF-8 ones make
        # the error itself fail to decode.)
        report = validate_files(files, schema, max_issues=20, stop_at_bad_file=True)
        if not report.ok:
            raise InvalidDataError(report) from None
        raise err
