"""Impression-log data: TFRecord I/O, validation, the simulator, ratings conversion."""

from tfrs_debias.data.io.log_dataset import SPLITS, write_log_dataset
from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import make_dataset, make_naive_dataset
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.data.io.validation import (
    InvalidDataError,
    ValidationIssue,
    ValidationReport,
    validate_files,
)
from tfrs_debias.data.io.writer import write_examples
from tfrs_debias.data.sources.click_model import ExaminationModel
from tfrs_debias.data.sources.simulator import ImpressionSimulator, SimulatorConfig

__all__ = [
    "SPLITS",
    "ExaminationModel",
    "GroundTruth",
    "ImpressionSimulator",
    "InvalidDataError",
    "LogDirectory",
    "SimulatorConfig",
    "ValidationIssue",
    "ValidationReport",
    "make_dataset",
    "make_naive_dataset",
    "validate_files",
    "write_examples",
    "write_log_dataset",
]
