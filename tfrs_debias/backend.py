"""TensorFlow with Keras 2 (tf-keras), as TensorFlow Recommenders requires.

Import TensorFlow from here (``from tfrs_debias.backend import tf, keras``), never
directly, so ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow first loads.
"""

from __future__ import annotations

import os
import sys

LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"


class KerasVersionError(ImportError):
    """Raised when TensorFlow was already loaded with Keras 3 as ``tf.keras``."""


def _ensure_legacy_keras() -> None:
    first_import = "tensorflow" not in sys.modules
    os.environ[LEGACY_KERAS_ENV] = "1"
    if first_import:
        return
    import tensorflow as _tf
    import tf_keras as _tf_keras

    if getattr(_tf.keras.layers, "Dense", None) is not _tf_keras.layers.Dense:
        raise KerasVersionError(
            "tfrs_debias needs Keras 2 (tf-keras) because tensorflow-recommenders refuses "
            "Keras 3, but TensorFlow was imported before tfrs_debias and its tf.keras is "
            f"already Keras 3. Set {LEGACY_KERAS_ENV}=1 in the environment before Python "
            "starts, or import tfrs_debias before tensorflow."
        )


_ensure_legacy_keras()

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras", "KerasVersionError", "LEGACY_KERAS_ENV"]
