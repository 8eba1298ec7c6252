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
    # The package is lazy: the check runs when the first TensorFlow-using name loads.
    proc = _run("import tensorflow as tf; tf.keras.layers; import tfrs_debias; tfrs_debias.train")
    assert proc.returncode != 0
    assert "KerasVersionError" in proc.stderr
    assert "TF_USE_LEGACY_KERAS=1" in proc.stderr


def test_package_and_cli_parser_do_not_import_tensorflow():
    proc = _run(
        "import sys, tfrs_debias, tfrs_debias.models.config; "
        "from tfrs_debias.cli import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_cli_help_is_fast_and_quiet():
    import time

    start = time.perf_counter()
    proc = _run("from tfrs_debias.cli import main; main(['--help'])")
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and "tfrs-debias" in proc.stdout
    assert elapsed < 5, elapsed  # ~0.1 s measured; TensorFlow alone takes 9-13 s here


def test_a_submodule_imported_first_still_gets_keras_2():
    # With a lazy package, tfrs_debias/__init__ must set TF_USE_LEGACY_KERAS before a
    # submodule imports TFRS (which refuses Keras 3).
    proc = _run("import tfrs_debias.models.base as b; print(b.keras.__version__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("2.")
