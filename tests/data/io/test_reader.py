import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.data.io.support import SCHEMA, sample_columns
from tfrs_debias.data import make_dataset, write_examples
from tfrs_debias.data.io.reader import HOLDOUT_BUCKETS, make_naive_dataset
from tfrs_debias.training.data_pass import count_rows


def _read_all(files, schema=SCHEMA, **kw):
    rows = {}
    for batch in make_dataset(files, schema, batch_size=3, shuffle=False, **kw):
        for k, v in batch.items():
            rows.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in rows.items()}


@pytest.mark.parametrize("compression, suffix", [("", ".tfrecord"), ("GZIP", ".tfrecord.gz")])
def test_round_trip(tmp_path, compression, suffix):
    cols = sample_columns()
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
    cols = {k: np.concatenate([v] * 30) for k, v in sample_columns().items()}
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


def test_shuffled_batches_are_full_but_the_last(tmp_path):
    # 30 x sample rows in 3 shards; shuffled blocks are cut into batches of exactly 50
    # (50 does not divide the 64-record blocks), the remainder last or dropped.
    cols = {k: np.concatenate([v] * 30) for k, v in sample_columns().items()}
    cols["user_id"] = np.arange(len(cols["user_id"]))
    write_examples(cols, SCHEMA, str(tmp_path), "train", num_shards=3, progress=False)
    n = len(cols["user_id"])
    files = str(tmp_path / "train-*")
    sizes = [len(b["user_id"]) for b in make_dataset(files, SCHEMA, batch_size=50, seed=0)]
    assert sizes == [50] * (n // 50) + ([n % 50] if n % 50 else [])
    dropped = make_dataset(files, SCHEMA, batch_size=50, seed=0, drop_remainder=True)
    assert dropped.element_spec["user_id"].shape.as_list() == [50]
    assert sum(len(b["user_id"]) for b in dropped) == 50 * (n // 50)


def test_naive_reader_reads_the_same_rows(tmp_path):
    write_examples(sample_columns(), SCHEMA, str(tmp_path), "train", progress=False)
    naive = np.concatenate(
        [
            b["item_id"].numpy()
            for b in make_naive_dataset(str(tmp_path / "train-*"), SCHEMA, batch_size=4)
        ]
    )
    np.testing.assert_array_equal(naive, sample_columns()["item_id"])


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no files match"):
        make_dataset(str(tmp_path / "nothing-*"), SCHEMA)
    write_examples(sample_columns(), SCHEMA, str(tmp_path), "a", compression="GZIP", progress=False)
    write_examples(sample_columns(), SCHEMA, str(tmp_path), "b", compression="", progress=False)
    with pytest.raises(ValueError, match="mix gzip"):
        make_dataset(str(tmp_path / "*"), SCHEMA)


def test_holdout_splits_records_by_their_hash_in_order(tmp_path):
    n = 2500  # more than one block of 1024 records
    cols = {k: np.resize(v, n) for k, v in sample_columns().items()}
    cols["user_id"] = np.arange(n)
    write_examples(
        cols, SCHEMA, str(tmp_path), "train", num_shards=1, compression="", progress=False
    )
    files = str(tmp_path / "train-*")
    # The rule, record by record: held out when the record's bytes hash to bucket 0.
    raw = list(tf.data.TFRecordDataset(sorted(glob.glob(files))).as_numpy_iterator())
    buckets = tf.strings.to_hash_bucket_fast(raw, HOLDOUT_BUCKETS).numpy()
    expected = np.arange(n)[buckets == 0]
    only = _read_all(files, holdout="only")["user_id"]
    rest = _read_all(files, holdout="exclude")["user_id"]
    np.testing.assert_array_equal(only, expected)
    np.testing.assert_array_equal(rest, np.arange(n)[buckets != 0])
    assert 150 < len(only) < 350  # about 1 in 10
    assert count_rows([glob.glob(files)[0]], holdout="only") == len(only)
    with pytest.raises(ValueError, match="holdout must be"):
        _read_all(files, holdout="some")
