"""`ThroughputLogger`: training examples/s per epoch, into the epoch logs (so Keras'
TensorBoard callback, which runs after it, records them)."""

from __future__ import annotations

import time

from tfrs_debias.backend import keras


class ThroughputLogger(keras.callbacks.Callback):
    """Training examples/s per epoch (validation time excluded)."""

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
