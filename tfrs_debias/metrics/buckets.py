"""User-activity and item-popularity buckets: the groups bucketed metrics, fairness
and exposure are reported over."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

USER_BUCKETS = ("new", "casual", "power")
ITEM_BUCKETS = ("head", "torso", "tail")


def user_bucket(train_impressions: np.ndarray, thresholds: Sequence[int] = (10, 100)) -> np.ndarray:
    """``new`` (<= thresholds[0] training impressions), ``casual``, ``power`` (> thresholds[1])."""
    low, high = thresholds
    counts = np.asarray(train_impressions)
    return np.where(counts <= low, "new", np.where(counts > high, "power", "casual"))


def item_bucket(
    train_impressions: np.ndarray,
    quantiles: Sequence[float] = (0.5, 0.9),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """``head`` (at or above the ``quantiles[1]`` quantile of distinct candidate items'
    training impressions), ``tail`` (at or below ``quantiles[0]``), else ``torso``."""
    counts = np.asarray(train_impressions)
    real = counts[mask] if mask is not None else counts.reshape(-1)
    low, high = np.quantile(real, quantiles) if real.size else (0, 0)
    return np.where(counts >= max(high, low + 1), "head", np.where(counts <= low, "tail", "torso"))
