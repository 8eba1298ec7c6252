"""`build_estimator`: an estimator from its registered name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tfrs_debias.models.base import BaseEstimator, check_config
from tfrs_debias.models.config import EstimatorConfig
from tfrs_debias.models.registry import estimator_class, estimator_entry
from tfrs_debias.schema import ImpressionSchema


def build_estimator(
    schema: ImpressionSchema,
    config: EstimatorConfig,
    vocabularies: Mapping[str, Sequence] | None = None,
) -> BaseEstimator:
    """The estimator registered as ``config.model``; a schema it cannot train on (e.g.
    no request ids for a slate estimator) is a ``ValueError`` naming what is missing
    (`check_trainable`)."""
    check_trainable(schema, config)
    return estimator_class(config.model)(schema, config, vocabularies)


def check_trainable(schema: ImpressionSchema, config: EstimatorConfig) -> None:
    """A ``ValueError`` naming what is missing when ``config.model`` cannot train with
    ``config`` on ``schema`` (the registry entry's needs, then `check_config`), without
    building anything."""
    problem = estimator_entry(config.model).unsupported(schema)
    if problem:
        raise ValueError(problem)
    check_config(schema, config)
