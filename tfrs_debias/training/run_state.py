"""`RunState`: the per-epoch history of a run, kept beside Keras' ``BackupAndRestore``
so that a killed and resumed run ends with the same history, epoch count and
early-stopping decision as an uninterrupted one.

``BackupAndRestore`` restores the weights, the optimizer and the epoch counter; it does
not keep ``History`` (a resumed ``fit`` returns only the epochs it ran) nor the state of
``EarlyStopping`` (reset by ``on_train_begin``: its patience starts again and its best
weights are forgotten). `RunState` writes each finished epoch's logs to a JSON file in
the backup folder; on resume it returns the earlier epochs with the new ones, and
replays the recorded monitor values into `PlateauStopping` (its state is a function of
them), taking the best epoch's weights from that epoch's checkpoint.
"""

from __future__ import annotations

import os

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.data.io.files import read_json, write_json
from tfrs_debias.training.plateau_stopping import PlateauStopping

#: Where ``BackupAndRestore`` keeps the chief's checkpoint, under its backup folder.
_BACKUP_CHECKPOINT = "chief"


def completed_epochs(backup_dir: str) -> int:
    """Epochs a killed run finished before its last backup (0 if there is none): the
    epoch a resumed ``fit`` starts at."""
    latest = tf.train.latest_checkpoint(os.path.join(backup_dir, _BACKUP_CHECKPOINT))
    if latest is None:
        return 0
    epoch = tf.train.load_variable(latest, "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")
    return max(int(epoch) + 1, 0)


class RunState(keras.callbacks.Callback):
    """Keeps the history of a run across kills; see the module docstring.

    Args:
      path: the JSON file (in the run's backup folder; removed when training ends).
      early_stopping: a `PlateauStopping` callback of the same ``fit`` whose state is
        replayed on resume. It must come before this callback in the list.
      checkpoint_pattern: the per-epoch weights, ``str.format`` -ed with ``epoch``
        (1-based, as ``ModelCheckpoint`` names them), for the best weights on resume.
    """

    def __init__(
        self,
        path: str,
        early_stopping: PlateauStopping | None = None,
        checkpoint_pattern: str | None = None,
    ):
        super().__init__()
        self.path = path
        self.early_stopping = early_stopping
        self.checkpoint_pattern = checkpoint_pattern
        self.epochs: list[dict[str, float]] = []
        self.resumed_at = 0
        self._first_epoch = True

    @property
    def history(self) -> dict[str, list[float]]:
        """``{metric: [value per epoch]}`` over the whole run, resumed parts included."""
        keys = list(dict.fromkeys(k for logs in self.epochs for k in logs))
        return {k: [logs.get(k, float("nan")) for logs in self.epochs] for k in keys}

    def on_train_begin(self, logs=None):
        self.epochs = list(read_json(self.path)["epochs"]) if tf.io.gfile.exists(self.path) else []
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch:
            return
        self._first_epoch = False
        self.resumed_at = epoch
        # A kill between this file and the backup can leave one epoch too many here.
        self.epochs = self.epochs[:epoch]
        if epoch and self.early_stopping is not None:
            self._replay_early_stopping()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({k: float(v) for k, v in (logs or {}).items()})
        tf.io.gfile.makedirs(os.path.dirname(self.path))
        write_json(self.path, {"epochs": self.epochs})

    def on_train_end(self, logs=None):
        if tf.io.gfile.exists(self.path):
            tf.io.gfile.remove(self.path)

    def _replay_early_stopping(self) -> None:
        """Runs the stopper's bookkeeping (`PlateauStopping.record`) over the recorded
        epochs; the kept epoch's weights come back from its checkpoint."""
        stopper = self.early_stopping
        assert stopper is not None  # (called only with one)
        for epoch, logs in enumerate(self.epochs):
            current = logs.get(stopper.monitor)
            if current is None:
                continue
            if stopper.record(epoch, current):
                stopper.best_weights = "pending"
        if stopper.best_weights is not None:
            stopper.best_weights = self._weights_of_epoch(stopper.best_epoch)

    def _weights_of_epoch(self, epoch: int) -> list[np.ndarray] | None:
        if self.checkpoint_pattern is None:
            return None
        path = self.checkpoint_pattern.format(epoch=epoch + 1)
        if not tf.io.gfile.exists(path + ".index"):
            return None
        current = self.model.get_weights()
        self.model.load_weights(path).expect_partial()
        best = self.model.get_weights()
        self.model.set_weights(current)
        return best
