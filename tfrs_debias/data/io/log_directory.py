"""`LogDirectory`: what a dataset folder holds and where.

A dataset folder (written by ``simulate``, ``movielens``, ``ratings``, ``popularity``
or ``convert``) holds ``{split}-NNNNN-of-NNNNN.tfrecord[.gz]`` shards, ``schema.json``
and optionally ``truth.npz`` + ``truth.json`` (ground truth) and ``popularity.npz``.
Every command that needs one of these asks this object, so the layout is written down
once. Paths go through ``tf.io.gfile``: any filesystem TensorFlow supports works.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from tfrs_debias.backend import tf
from tfrs_debias.schema import DEFAULT_TASKS, ImpressionSchema

_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-\d{5}-of-\d{5}\.tfrecord(\.gz)?$")


class LogDirectory:
    """A dataset folder.

    Args:
      path: the folder (local path or any ``tf.io.gfile`` URL such as ``gs://`` or
        ``ram://``).
    """

    SCHEMA_FILE = "schema.json"
    TRUTH_FILE = "truth.npz"
    POPULARITY_FILE = "popularity.npz"

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path).rstrip("/") or "/"

    @classmethod
    def of_files(cls, files: Sequence[str]) -> LogDirectory | None:
        """The folder holding the first of ``files`` (None without files)."""
        return cls(os.path.dirname(os.fspath(files[0])) or ".") if files else None

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def exists(self) -> bool:
        return tf.io.gfile.isdir(self.path)

    # -- splits -----------------------------------------------------------------------
    def pattern(self, split: str) -> str:
        """Glob of ``split`` 's shards."""
        return self.join(f"{split}-*.tfrecord*")

    def files(self, split: str) -> list[str]:
        """Sorted shards of ``split`` (empty if there are none)."""
        return sorted(tf.io.gfile.glob(self.pattern(split)))

    def require(self, split: str) -> list[str]:
        files = self.files(split)
        if not files:
            raise FileNotFoundError(f"{self.path}: no '{split}' shards ({self.pattern(split)})")
        return files

    def validation_files(self, train_split: str = "train") -> list[str]:
        """The validation shards that match ``train_split``: ``full_valid`` for the
        full-information twin's ``full_train`` (its early stopping then watches the
        labels it learns from), ``oracle_valid`` for ``oracle_train``, ``examined_valid``
        for ``examined_train``, else ``valid``."""
        return self.files(train_split.removesuffix("train") + "valid") or self.require("valid")

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits present, sorted."""
        if not self.exists:
            return ()
        found = set()
        for name in tf.io.gfile.listdir(self.path):
            match = _SHARD.match(name.rstrip("/"))
            if match:
                found.add(match["split"])
        return tuple(sorted(found))

    # -- schema, truth, popularity ----------------------------------------------------
    @property
    def schema_path(self) -> str:
        return self.join(self.SCHEMA_FILE)

    @property
    def has_schema(self) -> bool:
        return tf.io.gfile.exists(self.schema_path)

    def schema(self, tasks: Sequence[str] | None = None) -> ImpressionSchema:
        """``schema.json`` of the folder; without one, the default schema for ``tasks``."""
        if self.has_schema:
            return ImpressionSchema.load(self.schema_path)
        return ImpressionSchema.default(tasks=tuple(tasks) if tasks else DEFAULT_TASKS)

    @property
    def has_truth(self) -> bool:
        return tf.io.gfile.exists(self.join(self.TRUTH_FILE))

    def truth(self):
        """The folder's `GroundTruth`, or None when it has none."""
        from tfrs_debias.data.io.truth import GroundTruth

        return GroundTruth.load(self.path) if self.has_truth else None

    @property
    def popularity_path(self) -> str:
        return self.join(self.POPULARITY_FILE)

    def __repr__(self) -> str:
        return f"LogDirectory({self.path!r})"
