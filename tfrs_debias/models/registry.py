"""The one registry of estimator names.

Each entry names the estimator class (imported only when it is built, so the CLI can
list the names without loading TensorFlow) and the hyper-parameter groups its tuner
searches (`tfrs_debias.tuning.search_space`). CLI choices, `EstimatorConfig`
validation, `build_estimator` and the tuner's families all derive from it: adding an
estimator is its module plus one line here.
"""

from __future__ import annotations

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class EstimatorEntry:
    """One registered estimator.

    Args:
      name: the ``--model`` / ``EstimatorConfig.model`` name.
      target: ``"module:ClassName"`` of the `BaseEstimator` subclass (or the class).
      search_groups: names of `search_space.GROUPS` the tuner searches for it.
      description: one line for ``--help``.
      requires: schema roles the estimator cannot train without (``"request_id"``:
        slates; ``"bias"``: at least one bias feature).
    """

    name: str
    target: str | type
    search_groups: tuple[str, ...]
    description: str
    requires: tuple[str, ...] = ()

    def unsupported(self, schema) -> str | None:
        """Why ``schema`` cannot train this estimator, or None when it can."""
        missing = [role for role in self.requires if not schema.by_role(role)]
        if not missing:
            return None
        return f"model {self.name!r} needs {' and '.join(missing)} feature(s) in the schema"

    def load(self) -> type:
        if isinstance(self.target, type):
            return self.target
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


_M = "tfrs_debias.models"
REGISTRY: dict[str, EstimatorEntry] = {
    e.name: e
    for e in (
        EstimatorEntry(
            "multi_task",
            f"{_M}.multi_task:MultiTaskEstimator",
            ("common", "mmoe"),
            "naive: r_t(u,i), trained on the logs as they are",
        ),
        EstimatorEntry(
            "position_debiased",
            f"{_M}.position_debiased:PositionDebiasedEstimator",
            ("common", "bias"),
            "relevance x shallow bias tower (PAL or additive); serves relevance",
        ),
        EstimatorEntry(
            "factorized",
            f"{_M}.factorized:FactorizedEstimator",
            ("common", "bias", "mixture"),
            "mixture of user x item, user-only, item-only logits; serves the interaction",
        ),
        EstimatorEntry(
            "anchored_factorized",
            f"{_M}.anchored_factorized:AnchoredFactorizedEstimator",
            ("common", "bias", "mixture", "anchor"),
            "factorized with each marginal anchored to its own BCE",
        ),
        EstimatorEntry(
            "dual_learning",
            f"{_M}.dual_learning:DualLearningEstimator",
            ("common", "bias"),
            "DLA: ranker and examination model trained against each other over slates",
            requires=("request_id", "bias"),
        ),
    )
}

#: Registered names, in registry order.
MODEL_NAMES: tuple[str, ...] = tuple(REGISTRY)


def estimator_entry(name: str) -> EstimatorEntry:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; one of {MODEL_NAMES}")
    return REGISTRY[name]


def estimator_class(name: str) -> type:
    """The `BaseEstimator` subclass registered as ``name``."""
    return estimator_entry(name).load()
