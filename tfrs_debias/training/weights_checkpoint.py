"""`WeightsCheckpoint`: per-epoch checkpoints of the model's weights without the
optimizer's slots, and `save_model_weights` for the final ones.

Keras' ``save_weights`` writes every object the model tracks, its optimizer included:
with Adam that is three copies of each embedding table (the weights, m and v), so a run
folder at 1M ids held ~5x the export. Resuming a killed run reads the optimizer from
``BackupAndRestore``'s own backup; the per-epoch checkpoints and the final ``model/``
are read for weights only (early stopping's best epoch, `load_run`, export), so they
leave the optimizer out. The files are ordinary TensorFlow checkpoints with the
model's own object paths: ``model.load_weights(prefix)`` reads them.
"""

from __future__ import annotations

from tfrs_debias.backend import keras, tf


def save_model_weights(model: keras.Model, prefix: str) -> None:
    """Writes ``model``'s variables (every tracked child but the optimizer) to the
    checkpoint ``prefix``."""
    children = tf.train.TrackableView(model).children(model)
    kept = {name: child for name, child in children.items() if name != "optimizer"}
    tf.train.Checkpoint(**kept).write(prefix)


class WeightsCheckpoint(keras.callbacks.Callback):
    """After each epoch, `save_model_weights` to ``pattern.format(epoch=epoch + 1)``
    (1-based, as ``ModelCheckpoint`` numbers them)."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def on_epoch_end(self, epoch, logs=None):
        save_model_weights(self.model, self.pattern.format(epoch=epoch + 1))
