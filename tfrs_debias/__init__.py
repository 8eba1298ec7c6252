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
from tfrs_debias.schema import Feature, ImpressionSchema, SchemaError

__version__ = "0.1.0"

__all__ = [
    "ExaminationModel",
    "Feature",
    "GroundTruth",
    "ImpressionSchema",
    "ImpressionSimulator",
    "InvalidDataError",
    "SchemaError",
    "SimulatorConfig",
    "ValidationReport",
    "make_dataset",
    "validate_files",
    "write_examples",
]
