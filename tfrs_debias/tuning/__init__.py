"""Hyper-parameter search with keras-tuner (bound to tf-keras) over the estimators."""

from tfrs_debias.tuning.keras_tuner_compat import KerasTunerCompatError, import_keras_tuner
from tfrs_debias.tuning.search_space import SearchSpace, config_fields
from tfrs_debias.tuning.tuner import (
    OBJECTIVES,
    TUNERS,
    EstimatorHyperModel,
    TuneResult,
    format_results,
    grouped_ndcg,
    run_tuning,
)

__all__ = [
    "OBJECTIVES",
    "TUNERS",
    "EstimatorHyperModel",
    "KerasTunerCompatError",
    "SearchSpace",
    "TuneResult",
    "config_fields",
    "format_results",
    "grouped_ndcg",
    "import_keras_tuner",
    "run_tuning",
]
