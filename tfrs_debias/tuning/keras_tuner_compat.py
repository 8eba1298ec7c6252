"""`import_keras_tuner`: keras-tuner working with tf-keras (Keras 2) models.

keras-tuner 1.4 decides its backend from ``import keras``: with Keras 3 installed it
builds on Keras 3 and rejects tf-keras models. Aliasing ``keras`` to ``tf_keras`` while
keras-tuner is imported makes it take its ``tf.keras`` (= tf-keras, since
``TF_USE_LEGACY_KERAS=1``) code path; the alias is removed right after, so the rest of
the process sees ``keras`` as it was. This is the only place that does it.
"""

from __future__ import annotations

import sys
import types

from tfrs_debias.backend import keras as tf_keras


class KerasTunerCompatError(ImportError):
    pass


def import_keras_tuner() -> types.ModuleType:
    """keras_tuner, bound to tf-keras. Raises if it was already imported on Keras 3."""
    if "keras_tuner" not in sys.modules:
        previous = sys.modules.get("keras")
        sys.modules["keras"] = tf_keras
        try:
            import keras_tuner  # noqa: F401
        finally:
            if previous is None:
                sys.modules.pop("keras", None)
            else:
                sys.modules["keras"] = previous
    import keras_tuner
    from keras_tuner.src.backend import config

    if config.multi_backend():
        raise KerasTunerCompatError(
            "keras_tuner was imported before tfrs_debias and bound itself to Keras 3, which "
            "rejects tf-keras models; import tfrs_debias.tuning before keras_tuner"
        )
    return keras_tuner
