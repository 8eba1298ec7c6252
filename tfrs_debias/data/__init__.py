"""Impression-log data: TFRecord I/O, validation, the simulator, ratings conversion."""

from tfrs_debias.data.log_dataset import SPLITS, write_log_dataset
from tfrs_debias.data.reader import make_dataset, make_naive_dataset
from tfrs_debias.data.simulator import ImpressionSimulator, SimulatorConfig
from tfrs_debias.data.slates import ExaminationModel
from tfrs_debias.data.truth import GroundTruth
from tfrs_debias.data.validation import (
    InvalidDataError,
    ValidationIssue,
    ValidationReport,
    validate_files,
)
from tfrs_debias.data.writer import write_examples

__all__ = [
    "SPLITS",
    "ExaminationModel",
    "GroundTruth",
    "ImpressionSimulator",
    "InvalidDataError",
    "SimulatorConfig",
    "ValidationIssue",
    "ValidationReport",
    "make_dataset",
    "make_naive_dataset",
    "validate_files",
    "write_examples",
    "write_log_dataset",
]
