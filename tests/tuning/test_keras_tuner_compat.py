import os
import subprocess
import sys

from tfrs_debias.tuning import import_keras_tuner


def test_keras_tuner_is_bound_to_tf_keras():
    kt = import_keras_tuner()
    from keras_tuner.src.backend import config

    assert not config.multi_backend()
    assert kt.HyperModel is not None
    # the alias is gone: `keras` is whatever it was (Keras 3 here), not tf_keras
    import keras

    assert not keras.__version__.startswith("2.")


def test_keras_tuner_imported_first_fails_clearly():
    code = "import keras_tuner; import tfrs_debias.tuning"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=120,
    )
    assert proc.returncode != 0 and "import tfrs_debias.tuning before keras_tuner" in proc.stderr
