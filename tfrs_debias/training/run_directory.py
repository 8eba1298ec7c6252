"""`RunDirectory`: the layout of a training run's folder, and what a rerun into it does.

::

    RUN_DIR/run.json           what the run is: config, schema, training settings
    RUN_DIR/config.json        EstimatorConfig (with the final files below)
    RUN_DIR/schema.json        ImpressionSchema (the training schema)
    RUN_DIR/vocabularies.json  id vocabularies built from the training data
    RUN_DIR/model/weights.*    final weights (TF checkpoint)
    RUN_DIR/metrics.json       history, final metrics, throughput
    RUN_DIR/logs/              TensorBoard
    RUN_DIR/checkpoints/       per-epoch weights
    RUN_DIR/backup/            BackupAndRestore state and the run's history so far
    RUN_DIR/.workers/          non-chief workers' scratch folders (multi-worker)

A rerun with the same ``run.json`` into a killed run's folder resumes it; into a
finished run's folder, or with a different ``run.json``, it is refused unless
``overwrite``, which removes the old run's files first (other files are left alone).
"""

from __future__ import annotations

import os
from typing import Any

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import check_writable, read_json, remove_tree, write_json

RUN_FILE = "run.json"
_RUN_FILES = ("run.json", "config.json", "schema.json", "vocabularies.json", "metrics.json")
_RUN_FOLDERS = ("model", "logs", "checkpoints", "backup", ".workers")


class RunConflictError(ValueError):
    """A run folder that already holds another run (or a finished one)."""


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


class RunDirectory:
    """Paths of a run folder (see the module docstring) and `prepare` for a new run."""

    def __init__(self, path: str):
        self.path = os.fspath(path)

    def join(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    @property
    def backup_dir(self) -> str:
        return self.join("backup")

    @property
    def history_path(self) -> str:
        return self.join("backup", "history.json")

    @property
    def checkpoint_pattern(self) -> str:
        return self.join("checkpoints", "epoch-{epoch:02d}")

    def worker_dir(self, task_type: str, task_id: int) -> str:
        """A stable scratch folder of one non-chief worker (the same after a restart)."""
        return self.join(".workers", f"{task_type}-{task_id}")

    @property
    def is_killed_run(self) -> bool:
        return tf.io.gfile.exists(self.join("backup", "chief"))

    @property
    def is_finished_run(self) -> bool:
        return tf.io.gfile.exists(self.join("metrics.json")) and not self.is_killed_run

    def recorded(self) -> dict | None:
        path = self.join(RUN_FILE)
        return read_json(path) if tf.io.gfile.exists(path) else None

    def precheck(self, known: dict, overwrite: bool = False) -> None:
        """Before any pass over the data: the folder is writable, and it holds no
        finished run, nor a run whose ``known`` part of the identity (the settings
        fixed before the data is read: config, schema, files) differs, unless
        ``overwrite``. `prepare` checks the whole identity once it is known."""
        check_writable(self.path)
        old = self.recorded()
        if overwrite or (old is None and not self.is_killed_run and not self.is_finished_run):
            return
        partial = {k: old.get(k) for k in known} if old else None
        self._refuse_conflict(partial, known)

    def _refuse_conflict(self, old: dict | None, identity: dict) -> None:
        if old is not None and old != identity:
            changed = ", ".join(_differences(old, identity)[:8])
            raise RunConflictError(
                f"{self.path} holds a different run (changed: {changed}); pass "
                "--overwrite to replace it, or use another --out"
            )
        if self.is_finished_run or old is None:
            raise RunConflictError(
                f"{self.path} holds a finished run; pass --overwrite to train it "
                "again, or use another --out"
            )

    def prepare(self, identity: dict, overwrite: bool = False, chief: bool = True) -> bool:
        """Readies the folder for a run described by ``identity`` (JSON-able); returns
        True when it resumes a killed run of the same identity.

        Raises:
          RunConflictError: the folder holds a run with another identity, or a finished
            run, and ``overwrite`` is False.
        """
        old = self.recorded()
        has_run = old is not None or self.is_killed_run or self.is_finished_run
        if has_run and not overwrite:
            self._refuse_conflict(old, identity)
            return True  # a killed run of the same identity: resume
        if has_run and overwrite and chief:
            self.clear()
        if chief:
            tf.io.gfile.makedirs(self.path)
            write_json(self.join(RUN_FILE), identity)
        return False

    def clear(self) -> None:
        """Removes the run's files and folders (nothing else in the folder)."""
        for name in _RUN_FOLDERS:
            remove_tree(self.join(name))
        for name in _RUN_FILES:
            if tf.io.gfile.exists(self.join(name)):
                tf.io.gfile.remove(self.join(name))
