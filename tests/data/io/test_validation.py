import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.cli import main
from tfrs_debias.data import InvalidDataError, validate_files, write_examples
from tfrs_debias.schema import Feature, ImpressionSchema

# A schema that declares the rank range and the known devices (the default leaves both open).
SCHEMA = ImpressionSchema.default(
    tasks=("click",), num_positions=10, devices=("phone", "desktop", "tv")
).replace(add=[Feature("ips", "float32", "propensity")])


GOOD = {
    "user_id": 1,
    "item_id": 2,
    "request_id": 3,
    "position": 4,
    "device": b"phone",
    "click": 1,
    "ips": 0.5,
}


def _example(values: dict, float_fields=("ips",)) -> bytes:
    ex = tf.train.Example()
    for name, value in values.items():
        feature = ex.features.feature[name]
        vals = value if isinstance(value, list) else [value]
        if name in float_fields:
            feature.float_list.value.extend(vals)
        elif isinstance(vals[0], bytes):
            feature.bytes_list.value.extend(vals)
        else:
            feature.int64_list.value.extend(vals)
    return ex.SerializeToString()


def _write(path, records, compression=""):
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type=compression)) as w:
        for r in records:
            w.write(r)


def _without(key):
    return {k: v for k, v in GOOD.items() if k != key}


BAD_RECORDS = [
    (_example(_without("click")), "click", "missing", "missing feature 'click'"),
    (
        _example(GOOD, float_fields=("ips", "user_id")),
        "user_id",
        "wrong_type",
        "feature 'user_id' is float_list, expected int64_list (int64)",
    ),
    (
        _example({**GOOD, "item_id": [2, 3]}),
        "item_id",
        "wrong_length",
        "feature 'item_id' has 2 values, expected 1",
    ),
    (_example({**GOOD, "click": 2}), "click", "bad_label", "label 'click' must be 0 or 1, got 2"),
    (
        _example({**GOOD, "position": 10}),
        "position",
        "out_of_range",
        "'position' out of range [0, 10), got 10",
    ),
    (
        _example({**GOOD, "position": -1}),
        "position",
        "out_of_range",
        "'position' out of range [0, 10), got -1",
    ),
    (_example({**GOOD, "ips": float("nan")}), "ips", "not_finite", "feature 'ips' is NaN or inf"),
    (_example({**GOOD, "ips": float("inf")}), "ips", "not_finite", "feature 'ips' is NaN or inf"),
    (_example({**GOOD, "ips": 0.0}), "ips", "out_of_range", "propensity 'ips' must be in (0, 1]"),
    (b"\xff\xff not a proto", None, "not_example", "not a tf.train.Example"),
]


@pytest.mark.parametrize("compression", ["", "GZIP"])
@pytest.mark.parametrize("record, field, kind, message", BAD_RECORDS)
def test_each_problem_is_named(tmp_path, compression, record, field, kind, message):
    path = tmp_path / "logs.tfrecord"
    good = _example(GOOD)
    _write(path, [good, good, record, good], compression)
    report = validate_files(str(path), SCHEMA)
    assert not report.ok
    assert report.records == 4 and report.bad_records == 1
    assert len(report.issues) == 1
    issue = report.issues[0]
    assert (issue.file, issue.record, issue.field, issue.kind) == (str(path), 2, field, kind)
    assert message in issue.message
    assert str(issue).startswith(f"{path}: record 2: ")
    assert report.counts[(kind, field or "-")] == 1


def test_corrupted_file_and_summary(tmp_path):
    path = tmp_path / "logs.tfrecord"
    _write(path, [_example(GOOD)] * 5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])  # truncate the last record
    report = validate_files(str(path), SCHEMA)
    assert [(i.record, i.kind) for i in report.issues] == [(4, "corrupt")]
    assert "corrupted TFRecord data" in report.issues[0].message
    assert "validated 4 records in 1 files: 1 bad records, 1 problems" in report.summary()
    with pytest.raises(InvalidDataError, match=r"logs.tfrecord: record 4: corrupted"):
        report.raise_if_invalid()


def test_good_data_and_many_problems(tmp_path):
    n = 40000  # spans more than one validation chunk
    cols = {
        "user_id": np.arange(n),
        "item_id": np.arange(n),
        "request_id": np.arange(n),
        "position": np.arange(n) % 10,
        "device": np.array(["tv"] * n),
        "click": np.arange(n) % 2,
        "ips": np.full(n, 0.5),
    }
    write_examples(cols, SCHEMA, str(tmp_path), "train", num_shards=2, progress=False)
    report = validate_files(str(tmp_path / "train-*"), SCHEMA)
    assert report.ok and report.records == n
    bad = tmp_path / "bad.tfrecord"
    _write(bad, [_example({**GOOD, "click": 5, "position": 99})] * 300)
    report = validate_files(str(bad), SCHEMA, max_issues=10)
    assert report.num_issues == 600 and report.bad_records == 300 and len(report.issues) == 10
    assert "... 590 more problems not shown" in report.format()


def test_cli_validate_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.tfrecord", tmp_path / "bad.tfrecord"
    _write(good, [_example(GOOD)] * 3)
    _write(bad, [_example(GOOD), _example({**GOOD, "click": 7})])
    SCHEMA.save(tmp_path / "schema.json")
    assert main(["validate", "--files", str(good)]) == 0
    assert main(["validate", "--files", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: record 1: label 'click' must be 0 or 1, got 7" in out
    assert main(["validate", "--files", str(tmp_path / "none*")]) == 2
    assert "no files match" in capsys.readouterr().err


def test_open_device_values_are_summarised_not_rejected(tmp_path, capsys):
    # The default schema has no closed device list: 'tablet' (never written by the
    # simulator) validates, and the summary names each value's share.
    schema = ImpressionSchema.default(tasks=("click",))
    path = tmp_path / "logs.tfrecord"
    _write(path, [_example({**GOOD, "device": b"tablet"})] * 3 + [_example(GOOD)])
    report = validate_files(str(path), schema)
    assert report.ok and report.records == 4
    assert "values of device: tablet 75.0%, phone 25.0%" in report.summary()
    # With a declared vocabulary, values outside it are named (they map to unknown).
    report = validate_files(str(path), SCHEMA.replace(drop=["ips"]))
    assert report.ok
    assert "not in the schema vocabulary (mapped to unknown): ['tablet']" in report.summary()


BAD_AT = 11_000  # past the 10k records `--validate sample` pre-checks


def _log_with_bad_record(tmp_path, record, compression=""):
    """12k good records with ``record`` at index `BAD_AT`, and the schema beside them."""
    path = tmp_path / "logs.tfrecord"
    good = _example(GOOD)
    rows = [good] * 12_000
    rows[BAD_AT] = record
    _write(path, rows, compression)
    SCHEMA.save(str(tmp_path / "schema.json"))
    return str(path)


@pytest.mark.parametrize("record, field, kind, message", BAD_RECORDS)
def test_train_stops_at_a_bad_record_past_the_sample(
    tmp_path, capsys, record, field, kind, message
):
    path = _log_with_bad_record(tmp_path, record)
    out = tmp_path / "run"
    rc = main(["train", "--train-files", path, "--out", str(out), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"{path}: record {BAD_AT}: {message}" in err
    assert "Traceback" not in err
    assert not (out / "model").exists()


def test_stream_check_is_what_catches_values_negative_control(tmp_path):
    """With the in-stream check off, label 2 at record 11000 reads silently (what
    `train --validate sample` did before); with it on, the read fails and is located."""
    from tfrs_debias.data import make_dataset
    from tfrs_debias.data.io.validation import located_errors

    bad = BAD_RECORDS[3]
    assert bad[2] == "bad_label"
    path = _log_with_bad_record(tmp_path, bad[0])
    labels = np.concatenate(
        [b["click"].numpy() for b in make_dataset(path, SCHEMA, 4096, shuffle=False, check=False)]
    )
    assert labels[BAD_AT] == 2 and labels.size == 12_000
    expected = f"record {BAD_AT}: label 'click' must be 0 or 1"
    with pytest.raises(InvalidDataError, match=expected), located_errors(path, SCHEMA):
        for _ in make_dataset(path, SCHEMA, 4096, shuffle=False):
            pass


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_stream_check_with_shuffling_and_gzip(tmp_path, compression):
    """The located record is the file's own index, whatever order the stream read it in."""
    from tfrs_debias.data import make_dataset
    from tfrs_debias.data.io.validation import located_errors

    path = _log_with_bad_record(tmp_path, _example({**GOOD, "position": 10}), compression)
    expected = f"record {BAD_AT}: 'position' out of range"
    with pytest.raises(InvalidDataError, match=expected), located_errors(path, SCHEMA):
        for _ in make_dataset(path, SCHEMA, 512, seed=1, num_epochs=2):
            pass
