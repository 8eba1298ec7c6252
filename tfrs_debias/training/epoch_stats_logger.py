"""`EpochStatsLogger`: training examples/s and the learning rate per epoch, into the
epoch logs (so Keras' TensorBoard callback, which runs after it, records them; Keras
logs the learning rate only for schedules)."""

from __future__ import annotations

import time

from tfrs_debias.backend import keras


class EpochStatsLogger(keras.callbacks.Callback):
    """Training examples/s per epoch (validation time excluded) and the optimizer's
    learning rate (``examples_per_sec``, ``learning_rate`` in the epoch logs)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps, self._train_time = time.perf_counter(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._train_time is None:
            self._train_time = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = self._train_time or (time.perf_counter() - self._start)
        rate = self._steps * self.batch_size / max(elapsed, 1e-9)
        self.rates.append(rate)
        if logs is not None:
            logs["examples_per_sec"] = rate
            lr = getattr(self.model.optimizer, "learning_rate", None)
            if lr is not None:
                value = lr(self.model.optimizer.iterations) if callable(lr) else lr
                logs["learning_rate"] = float(keras.backend.get_value(value))
