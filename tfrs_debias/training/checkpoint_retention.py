"""`CheckpointRetention`: keeps the run folder's per-epoch checkpoints to the last few
and the best, so a run directory does not grow by a full checkpoint per epoch."""

from __future__ import annotations

import os

from tfrs_debias.backend import keras, tf
from tfrs_debias.training.plateau_stopping import PLATEAU_TOLERANCE, PlateauStopping


class CheckpointRetention(keras.callbacks.Callback):
    """After each epoch, deletes the ``ModelCheckpoint`` files of epochs other than the
    last ``keep_last`` and the one early stopping keeps by ``monitor``
    (`PlateauStopping.kept_epoch`) (which a resumed run's early
    stopping reloads).

    Args:
      pattern: the checkpoints' ``str.format`` pattern with ``epoch`` (1-based).
      history: a callable returning ``{metric: [value per epoch]}`` for the whole run
        (`RunState.history`, which spans a kill and a resume). It must have recorded
        the epoch before this callback runs.
      keep_last: how many of the latest epochs to keep. Defaults to 2.
      monitor: the metric whose kept epoch (`PlateauStopping`) stays. Defaults to
        ``val_loss``.
      tolerance: the early stopping's `PlateauStopping.tolerance`.
    """

    def __init__(
        self,
        pattern: str,
        history,
        keep_last: int = 2,
        monitor: str = "val_loss",
        tolerance: float = PLATEAU_TOLERANCE,
    ):
        super().__init__()
        if keep_last < 1:
            raise ValueError("keep_last must be >= 1")
        self.pattern = pattern
        self.history = history
        self.keep_last = keep_last
        self.monitor = monitor
        self.tolerance = tolerance

    def kept_epochs(self, num_epochs: int) -> set[int]:
        """0-based epochs whose checkpoints stay after ``num_epochs`` epochs."""
        keep = set(range(max(0, num_epochs - self.keep_last), num_epochs))
        values = self.history().get(self.monitor, [])[:num_epochs]
        kept = PlateauStopping.kept_epoch(values, self.tolerance)
        if kept is not None:
            keep.add(kept)
        return keep

    def on_epoch_end(self, epoch, logs=None):
        keep = self.kept_epochs(epoch + 1)
        for old in range(epoch + 1):
            if old in keep:
                continue
            prefix = self.pattern.format(epoch=old + 1)
            for path in tf.io.gfile.glob(prefix + ".*"):
                if os.path.basename(path).startswith(os.path.basename(prefix) + "."):
                    tf.io.gfile.remove(path)
