"""tfrs_debias: multi-task ranking on impression logs with bias taken out at serving.

Public names load on first use, so ``import tfrs_debias`` is cheap. Everything that
touches TensorFlow imports it through `tfrs_debias.backend`, which sets
``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads (TFRS needs Keras 2) and fails
clearly if TensorFlow was already loaded with Keras 3.
"""

import os
from typing import TYPE_CHECKING

from tfrs_debias._lazy import lazy_exports

# Before any submodule can import TensorFlow or TFRS (cheap: no TensorFlow import here);
# `tfrs_debias.backend` also checks that an already-loaded TensorFlow uses Keras 2.
os.environ["TF_USE_LEGACY_KERAS"] = "1"

_EXPORTS = {
    **dict.fromkeys(
        ("ExaminationModel", "GroundTruth", "ImpressionSimulator", "InvalidDataError")
        + ("LogDirectory", "SimulatorConfig", "ValidationReport", "make_dataset")
        + ("validate_files", "write_examples"),
        "tfrs_debias.data",
    ),
    **dict.fromkeys(
        ("Evaluator", "Scorer", "Variant", "format_table", "run_comparison")
        + ("summary_rows", "write_report"),
        "tfrs_debias.evaluation",
    ),
    **dict.fromkeys(
        ("AnchoredFactorizedEstimator", "EstimatorConfig", "FactorizedEstimator")
        + ("MultiTaskEstimator", "PositionDebiasedEstimator", "build_estimator"),
        "tfrs_debias.models",
    ),
    **dict.fromkeys(("Feature", "ImpressionSchema", "SchemaError"), "tfrs_debias.schema"),
    **dict.fromkeys(
        ("LoadedExport", "RerankOptions", "TopItemSelector", "export_saved_model")
        + ("make_server",),
        "tfrs_debias.serving",
    ),
    **dict.fromkeys(("load_run", "train"), "tfrs_debias.training"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__version__ = "0.2.0"
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from tfrs_debias.data import *  # noqa: F403
    from tfrs_debias.evaluation import *  # noqa: F403
    from tfrs_debias.models import *  # noqa: F403
    from tfrs_debias.schema import Feature, ImpressionSchema, SchemaError  # noqa: F401
    from tfrs_debias.serving import *  # noqa: F403
    from tfrs_debias.training import load_run, train  # noqa: F401
