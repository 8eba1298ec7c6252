"""Training: Keras ``fit`` under tf.distribute, run directories, reloading."""

from tfrs_debias.training.data_pass import build_vocabularies
from tfrs_debias.training.trainer import (
    STRATEGIES,
    TrainResult,
    auto_batch_size,
    auto_epochs,
    is_chief,
    load_run,
    make_strategy,
    train,
    train_from_files,
)

__all__ = [
    "STRATEGIES",
    "TrainResult",
    "auto_batch_size",
    "auto_epochs",
    "build_vocabularies",
    "is_chief",
    "load_run",
    "make_strategy",
    "train",
    "train_from_files",
]
