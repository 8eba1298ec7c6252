"""The estimators: `tfrs.Model` subclasses with a training path and a debiased path.

Names are registered once in `tfrs_debias.models.registry`; the classes load on first
use (the registry and `EstimatorConfig` need no TensorFlow).
"""

from __future__ import annotations

from tfrs_debias._lazy import lazy_exports

_EXPORTS = {
    "AnchoredFactorizedEstimator": "tfrs_debias.models.anchored_factorized",
    "BaseEstimator": "tfrs_debias.models.base",
    "EstimatorConfig": "tfrs_debias.models.config",
    "FactorizedEstimator": "tfrs_debias.models.factorized",
    "MultiTaskEstimator": "tfrs_debias.models.multi_task",
    "PositionDebiasedEstimator": "tfrs_debias.models.position_debiased",
    "build_estimator": "tfrs_debias.models.build",
    "EstimatorEntry": "tfrs_debias.models.registry",
    "MODEL_NAMES": "tfrs_debias.models.registry",
    "REGISTRY": "tfrs_debias.models.registry",
    "estimator_class": "tfrs_debias.models.registry",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
