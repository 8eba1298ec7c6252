import os
from pathlib import Path

import numpy as np
import pytest

from tests.data.io.support import SCHEMA, sample_columns
from tfrs_debias.data import write_examples
from tfrs_debias.schema import Feature


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
    cols = sample_columns()
    change(cols)
    with pytest.raises(ValueError, match=message):
        write_examples(cols, SCHEMA, str(tmp_path), "train", progress=False)
    assert os.listdir(tmp_path) == []


def test_writer_keeps_existing_files(tmp_path):
    first = write_examples(sample_columns(), SCHEMA, str(tmp_path), "train", progress=False)
    before = Path(first[0]).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_examples(sample_columns(3), SCHEMA, str(tmp_path), "train", progress=False)
    assert Path(first[0]).read_bytes() == before
    # A failure half-way through the rows leaves the old shards and no temporary files.
    cols = sample_columns()
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
        sample_columns(),
        SCHEMA,
        str(tmp_path),
        "train",
        num_shards=2,
        progress=False,
        overwrite=True,
    )
    write_examples(
        sample_columns(),
        SCHEMA,
        str(tmp_path),
        "train",
        num_shards=1,
        progress=False,
        overwrite=True,
    )
    assert sorted(os.listdir(tmp_path)) == ["train-00000-of-00001.tfrecord.gz"]
