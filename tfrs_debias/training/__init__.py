"""Training: Keras ``fit`` under tf.distribute, run directories, reloading."""

from tfrs_debias.training.trainer import (
    STRATEGIES,
    TrainResult,
    build_vocabularies,
    is_chief,
    load_run,
    make_strategy,
    train,
)

__all__ = [
    "STRATEGIES",
    "TrainResult",
    "build_vocabularies",
    "is_chief",
    "load_run",
    "make_strategy",
    "train",
]
