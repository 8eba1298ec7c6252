"""The estimators: `tfrs.Model` subclasses with a training path and a debiased path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tfrs_debias.models.anchored_factorized import AnchoredFactorizedEstimator
from tfrs_debias.models.base import BaseEstimator
from tfrs_debias.models.config import MODEL_NAMES, EstimatorConfig
from tfrs_debias.models.factorized import FactorizedEstimator
from tfrs_debias.models.multi_task import MultiTaskEstimator
from tfrs_debias.models.position_debiased import PositionDebiasedEstimator
from tfrs_debias.schema import ImpressionSchema

ESTIMATORS: dict[str, type[BaseEstimator]] = {
    "multi_task": MultiTaskEstimator,
    "position_debiased": PositionDebiasedEstimator,
    "factorized": FactorizedEstimator,
    "anchored_factorized": AnchoredFactorizedEstimator,
}
assert tuple(ESTIMATORS) == MODEL_NAMES


def build_estimator(
    schema: ImpressionSchema,
    config: EstimatorConfig,
    vocabularies: Mapping[str, Sequence] | None = None,
) -> BaseEstimator:
    """The estimator named by ``config.model``."""
    return ESTIMATORS[config.model](schema, config, vocabularies)


__all__ = [
    "ESTIMATORS",
    "MODEL_NAMES",
    "AnchoredFactorizedEstimator",
    "BaseEstimator",
    "EstimatorConfig",
    "FactorizedEstimator",
    "MultiTaskEstimator",
    "PositionDebiasedEstimator",
    "build_estimator",
]
