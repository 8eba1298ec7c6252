"""The estimators: `tfrs.Model` subclasses with a training path and a debiased path.

Names are registered once in `tfrs_debias.models.registry`; the classes load on first
use (the registry and `EstimatorConfig` need no TensorFlow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfrs_debias._lazy import lazy_exports

_EXPORTS = {
    "AnchoredFactorizedEstimator": "tfrs_debias.models.anchored_factorized",
    "BaseEstimator": "tfrs_debias.models.base",
    "DualLearningEstimator": "tfrs_debias.models.dual_learning",
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

if TYPE_CHECKING:  # pragma: no cover - what type checkers see of the lazy names
    from tfrs_debias.models.anchored_factorized import AnchoredFactorizedEstimator  # noqa: F401
    from tfrs_debias.models.base import BaseEstimator  # noqa: F401
    from tfrs_debias.models.build import build_estimator  # noqa: F401
    from tfrs_debias.models.config import EstimatorConfig  # noqa: F401
    from tfrs_debias.models.dual_learning import DualLearningEstimator  # noqa: F401
    from tfrs_debias.models.factorized import FactorizedEstimator  # noqa: F401
    from tfrs_debias.models.multi_task import MultiTaskEstimator  # noqa: F401
    from tfrs_debias.models.position_debiased import PositionDebiasedEstimator  # noqa: F401
    from tfrs_debias.models.registry import (  # noqa: F401
        MODEL_NAMES,
        REGISTRY,
        EstimatorEntry,
        estimator_class,
    )
