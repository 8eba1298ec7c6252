"""tfrs_debias: multi-task ranking on impression logs with bias taken out at serving.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads (TFRS
needs Keras 2) and fails clearly if TensorFlow was already loaded with Keras 3.
"""

from tfrs_debias import backend  # noqa: F401  (must run before anything imports TF)
from tfrs_debias.data import (
    ExaminationModel,
    GroundTruth,
    ImpressionSimulator,
    InvalidDataError,
    SimulatorConfig,
    ValidationReport,
    make_dataset,
    validate_files,
    write_examples,
)
from tfrs_debias.evaluation import (
    Evaluator,
    Scorer,
    Variant,
    format_table,
    run_comparison,
    summary_rows,
    write_report,
)
from tfrs_debias.models import (
    AnchoredFactorizedEstimator,
    EstimatorConfig,
    FactorizedEstimator,
    MultiTaskEstimator,
    PositionDebiasedEstimator,
    build_estimator,
)
from tfrs_debias.schema import Feature, ImpressionSchema, SchemaError
from tfrs_debias.serving import TopItemSelector, export_saved_model, make_server
from tfrs_debias.training import load_run, train

__version__ = "0.1.0"

__all__ = [
    "AnchoredFactorizedEstimator",
    "EstimatorConfig",
    "Evaluator",
    "ExaminationModel",
    "FactorizedEstimator",
    "Feature",
    "GroundTruth",
    "ImpressionSchema",
    "ImpressionSimulator",
    "InvalidDataError",
    "MultiTaskEstimator",
    "PositionDebiasedEstimator",
    "SchemaError",
    "Scorer",
    "SimulatorConfig",
    "TopItemSelector",
    "ValidationReport",
    "Variant",
    "build_estimator",
    "export_saved_model",
    "format_table",
    "load_run",
    "make_dataset",
    "make_server",
    "run_comparison",
    "summary_rows",
    "train",
    "validate_files",
    "write_examples",
    "write_report",
]
