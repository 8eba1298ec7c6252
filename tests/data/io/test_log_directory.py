"""`LogDirectory`: splits and the validation split that matches a training split."""

import pytest

from tfrs_debias.backend import tf
from tfrs_debias.data import LogDirectory


def _touch(folder: LogDirectory, *splits: str) -> None:
    tf.io.gfile.makedirs(folder.path)
    for split in splits:
        with tf.io.gfile.GFile(folder.join(f"{split}-00000-of-00001.tfrecord"), "w") as fh:
            fh.write("")


def test_validation_files_follow_the_training_split():
    folder = LogDirectory("ram://log_directory_test/sim")
    _touch(folder, "train", "valid", "full_train", "full_valid", "oracle_train")
    _touch(folder, "examined_train", "examined_valid")
    assert folder.splits == (
        "examined_train",
        "examined_valid",
        "full_train",
        "full_valid",
        "oracle_train",
        "train",
        "valid",
    )
    name = lambda files: [f.rsplit("/", 1)[1] for f in files]  # noqa: E731
    assert name(folder.validation_files()) == ["valid-00000-of-00001.tfrecord"]
    # The ceiling stops early on its own kind of labels ...
    assert name(folder.validation_files("full_train")) == ["full_valid-00000-of-00001.tfrecord"]
    assert name(folder.validation_files("examined_train")) == [
        "examined_valid-00000-of-00001.tfrecord"
    ]
    # ... and a twin without its own validation split falls back to the logs' one.
    assert name(folder.validation_files("oracle_train")) == ["valid-00000-of-00001.tfrecord"]
    assert name(folder.validation_files("random_slice")) == ["valid-00000-of-00001.tfrecord"]


def test_validation_files_without_valid_split_name_the_folder():
    folder = LogDirectory("ram://log_directory_test/bare")
    _touch(folder, "train")
    with pytest.raises(FileNotFoundError, match=r"ram://log_directory_test/bare: no 'valid'"):
        folder.validation_files()
