"""Helpers shared by the estimator tests."""

from tfrs_debias.models import (
    EstimatorConfig,
    build_estimator,
)

SMALL = dict(embedding_dim=8, hidden_units=(16,), component_units=(8,), gate_units=(4,))


def small_model(schema, name, **kw):
    return build_estimator(schema, EstimatorConfig(model=name, **{**SMALL, **kw}))
