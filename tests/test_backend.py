import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    "code",
    [
        "import tfrs_debias.backend as b; print(b.keras.__version__)",
        # TensorFlow imported first but tf.keras not touched yet: still Keras 2.
        "import tensorflow as tf; import tfrs_debias.backend as b; "
        "print(b.tf.keras.layers.Dense.__module__)",
    ],
)
def test_keras_2_is_used(code):
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert out.startswith("2.") or out.startswith("tf_keras."), out


def test_keras_3_already_loaded_fails_clearly():
    proc = _run("import tensorflow as tf; tf.keras.layers; import tfrs_debias")
    assert proc.returncode != 0
    assert "KerasVersionError" in proc.stderr
    assert "TF_USE_LEGACY_KERAS=1" in proc.stderr
