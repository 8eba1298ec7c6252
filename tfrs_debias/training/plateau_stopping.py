"""`PlateauStopping`: early stopping that keeps the last epoch on the validation loss's
plateau, not whichever epoch of a flat stretch happened to be lowest.

Keras's ``EarlyStopping`` keeps the epoch of the lowest validation loss and stops after
``patience`` epochs without a new lowest. Where the loss is flat, differences between
epochs are far inside its sampling noise and that pick is arbitrary, while the bias
tower's examination curve is still settling (the relevance tower can make up for a
curve that is off, so the loss hardly sees it). On the real search click log (PyClick's
Yandex sample) the validation loss moved by 0.02% between epochs 8 and 16 while the
curve's largest error against PBM went from 12% to 9%; ``EarlyStopping(patience=2)``
stopped at epoch 10 keeping epoch 8.

Here an epoch is *on the plateau* when its loss is within ``tolerance`` (relative) of
the lowest so far. The kept epoch is the last one on the plateau, and training stops
after ``patience`` epochs off it (a loss that rises by more than the tolerance:
overfitting). The kept epoch's loss is always within the tolerance of the lowest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tfrs_debias.backend import keras

#: The relative tolerance of `PlateauStopping` when none is given (0.1% of the loss).
PLATEAU_TOLERANCE = 1e-3


def plateau_tolerance(valid_rows: int) -> float:
    """The tolerance `train` uses, ``2/√rows``: about one to one and a half standard
    errors of a mean validation loss over ``valid_rows`` examples. The per-example loss's
    standard deviation is 1.3-1.9 times its mean (measured at the kept epoch: 1.93 on
    the real search click log, 1.40 on Coat, 1.30 on the default simulator), so the
    standard error is 1.3-1.9 times ``mean/√rows``; epochs closer than that to the
    lowest cannot be told apart from it (1.1% at 35k validation rows, 7.4% at 739)."""
    return 2.0 / math.sqrt(max(valid_rows, 1))


class PlateauStopping(keras.callbacks.EarlyStopping):
    """Stops after ``patience`` epochs off the plateau; restores the last epoch on it.

    Args:
      monitor: the metric (lower is better). Defaults to ``val_loss``.
      patience: epochs off the plateau before stopping. Defaults to 2.
      tolerance: how far above the lowest value (relative to it) an epoch is still on
        the plateau. 0 keeps the lowest epoch (the last of ties).
    """

    def __init__(
        self, monitor: str = "val_loss", patience: int = 2, tolerance: float = PLATEAU_TOLERANCE
    ):
        super().__init__(monitor=monitor, patience=patience, restore_best_weights=True)
        self.tolerance = tolerance
        self.lowest = np.inf
        self.wait: int = 0

    @classmethod
    def for_validation(cls, valid_rows: int, patience: int = 2) -> PlateauStopping:
        """On ``val_loss``, with `plateau_tolerance` of ``valid_rows`` (what `train` and
        `tune` use)."""
        return cls("val_loss", patience, tolerance=plateau_tolerance(valid_rows))

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.lowest = np.inf

    def record(self, epoch: int, current: float) -> bool:
        """One epoch's bookkeeping; True when it is on the plateau (its weights are kept)."""
        self.wait += 1
        if current < self.lowest:
            self.lowest = current
        if current > self.lowest + self.tolerance * abs(self.lowest):
            return False
        self.best, self.best_epoch, self.wait = current, epoch, 0
        return True

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None:
            return
        if self.record(epoch, float(current)):
            self.best_weights = self.model.get_weights()
        elif self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    @staticmethod
    def kept_epoch(values: Sequence[float], tolerance: float = PLATEAU_TOLERANCE) -> int | None:
        """The 0-based epoch `PlateauStopping` keeps over ``values`` (None: no value)."""
        rule = PlateauStopping(patience=len(values) + 1, tolerance=tolerance)
        rule.best_epoch = -1
        for epoch, value in enumerate(values):
            if value is not None and np.isfinite(value):
                rule.record(epoch, float(value))
        return None if rule.best_epoch < 0 else rule.best_epoch
