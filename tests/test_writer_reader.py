import os
from pathlib import Path

import numpy as np
import pytest

from tfrs_debias.data import make_dataset, write_examples
from tfrs_debias.data.io.reader import make_naive_dataset
from tfrs_debias.schema import Feature, ImpressionSchema

# A schema that declares the rank range and the known devices (the default leaves both open).
SCHEMA = ImpressionSchema.default(
    tasks=("click",), num_positions=10, devices=("phone", "desktop", "tv")
).replace(add=[Feature("ips", "float32", "propensity")])


def _columns(n=7):
    return {
        "user_id": np.arange(n) + 100,
        "item_id": np.arange(n) * 3,
        "request_id": np.arange(n) // 3,
        "position": np.arange(n) % 3,
        "device": np.array(["phone", "tv", "desktop"] * 3)[:n],
        "click": np.arange(n) % 2,
        "ips": np.linspace(0.1, 1.0, n),
    }


def _read_all(files, schema=SCHEMA, **kw):
    rows = {}
    for batch in make_dataset(files, schema, batch_size=3, shuffle=False, **kw):
        for k, v in batch.items():
            rows.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in rows.items()}


@pytest.mark.parametrize("compression, suffix", [("", ".tfrecord"), ("GZIP", ".tfrecord.gz")])
def test_round_trip(tmp_path, compression, suffix):
    cols = _columns()
    files = write_examples(
        cols, SCHEMA, str(tmp_path), "train", num_shards=2, compression=compression, progress=False
    )
    assert [os.path.basename(f) for f in files] == [
        f"train-00000-of-00002{suffix}",
        f"train-00001-of-00002{suffix}",
    ]
    got = _read_all(str(tmp_path / "train-*"))
    np.testing.assert_array_equal(got["user_id"], cols["user_id"])
    np.testing.assert_array_equal(got["position"], cols["position"])
    assert got["device"].tolist() == [d.encode() for d in cols["device"]]
    np.testing.assert_allclose(got["ips"], cols["ips"], rtol=1e-6)
    assert got["user_id"].dtype == np.int64 and got["ips"].dtype == np.float32


def test_shuffle_is_seeded_permutation(tmp_path):
    cols = {k: np.concatenate([v] * 30) for k, v in _columns().items()}
    cols["user_id"] = np.arange(len(cols["user_id"]))
    write_examples(cols, SCHEMA, str(tmp_path), "train", num_shards=3, progress=False)

    def order(seed):
        ds = make_dataset(
            str(tmp_path / "train-*"), SCHEMA, batch_size=50, seed=seed, shuffle_buffer=64
        )
        return np.concatenate([b["user_id"].numpy() for b in ds])

    a, b, c = order(1), order(1), order(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.sort(a), cols["user_id"])
    assert not np.array_equal(a, cols["user_id"])


def test_naive_reader_reads_the_same_rows(tmp_path):
    write_examples(_columns(), SCHEMA, str(tmp_path), "train", progress=False)
    naive = np.concatenate(
        [
            b["item_id"].numpy()
            for b in make_naive_dataset(str(tmp_path / "train-*"), SCHEMA, batch_size=4)
        ]
    )
    np.testing.assert_array_equal(naive, _columns()["item_id"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("click"), r"columns missing for schema features \['click'\]"),
        (
            lambda c: c.__setitem__("click", np.array([0, 1, 2, 0, 1, 0, 1])),
            r"label 'click' must be 0 or 1: row 2 has 2",
        ),
        (
            lambda c: c.__setitem__("position", np.array([0, 1, 2, 10, 0, 1, 2])),
            r"'position' out of range \[0, 10\): row 3 has 10",
        ),
        (
            lambda c: c.__setitem__("ips", np.array([0.5, np.nan, 1, 1, 1, 1, 1.0])),
            r"feature 'ips' is NaN or inf: row 1",
        ),
        (
            lambda c: c.__setitem__("user_id", np.array(["a"] * 7)),
            r"column 'user_id' has dtype <U1, expected integers",
        ),
        (lambda c: c.__setitem__("item_id", np.arange(6)), r"different lengths"),
    ],
)
def test_writer_rejects_bad_columns_and_writes_nothing(tmp_path, change, message):
    cols = _columns()
    change(cols)
    with pytest.raises(ValueError, match=message):
        write_examples(cols, SCHEMA, str(tmp_path), "train", progress=False)
    assert os.listdir(tmp_path) == []


def test_writer_keeps_existing_files(tmp_path):
    first = write_examples(_columns(), SCHEMA, str(tmp_path), "train", progress=False)
    before = Path(first[0]).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_examples(_columns(3), SCHEMA, str(tmp_path), "train", progress=False)
    assert Path(first[0]).read_bytes() == before
    # A failure half-way through the rows leaves the old shards and no temporary files.
    cols = _columns()
    cols["device"] = np.array([b"phone"] * 6 + [None], dtype=object)
    with pytest.raises(Exception):  # noqa: B017 (whatever the row fails with)
        write_examples(
            cols,
            SCHEMA.replace(drop=["device"]).replace(add=[Feature("device", "string", "bias")]),
            str(tmp_path),
            "train",
            overwrite=True,
            progress=False,
        )
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(first[0])]
    assert Path(first[0]).read_bytes() == before
    # overwrite replaces shards, including ones the new write no longer produces
    write_examples(
        _columns(), SCHEMA, str(tmp_path), "train", num_shards=2, progress=False, overwrite=True
    )
    write_examples(
        _columns(), SCHEMA, str(tmp_path), "train", num_shards=1, progress=False, overwrite=True
    )
    assert sorted(os.listdir(tmp_path)) == ["train-00000-of-00001.tfrecord.gz"]


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no files match"):
        make_dataset(str(tmp_path / "nothing-*"), SCHEMA)
    write_examples(_columns(), SCHEMA, str(tmp_path), "a", compression="GZIP", progress=False)
    write_examples(_columns(), SCHEMA, str(tmp_path), "b", compression="", progress=False)
    with pytest.raises(ValueError, match="mix gzip"):
        make_dataset(str(tmp_path / "*"), SCHEMA)
