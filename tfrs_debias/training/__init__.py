"""Training: Keras ``fit`` under tf.distribute, run directories, reloading."""

from tfrs_debias.training.data_pass import build_vocabularies
from tfrs_debias.training.lazy_adam import LazyAdam, build_optimizer
from tfrs_debias.training.slice_calibration import calibrate_on_slice
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
    "LazyAdam",
    "TrainResult",
    "auto_batch_size",
    "auto_epochs",
    "build_optimizer",
    "build_vocabularies",
    "calibrate_on_slice",
    "is_chief",
    "load_run",
    "make_strategy",
    "train",
    "train_from_files",
]
