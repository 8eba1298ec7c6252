"""Fairness of a model's served scores across groups: `truth_fairness` (error per user
group and top-k exposure per item group, against a `GroundTruth`) and
`logged_fairness` (served log-loss per user group on logged rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.metrics.buckets import item_bucket, user_bucket
from tfrs_debias.metrics.fairness import equal_error_test, exposure_shares, shares_table
from tfrs_debias.metrics.ranking import ndcg_at_k
from tfrs_debias.schema import ImpressionSchema


def first_truth_task(truth: GroundTruth, tasks: Sequence[str]) -> tuple[int, str] | None:
    """``(index, name)`` of the first of ``tasks`` the truth has relevance for."""
    return next(((i, t) for i, t in enumerate(tasks) if t in truth.relevance), None)


def truth_fairness(
    truth: GroundTruth,
    tasks: Sequence[str],
    schema: ImpressionSchema,
    scores: np.ndarray,
    k: int = 10,
    user_thresholds: Sequence[int] = (10, 100),
    item_quantiles: Sequence[float] = (0.5, 0.9),
) -> dict[str, Any] | None:
    """Error across user groups and top-k exposure across item groups, against the
    truth, for the first task the truth has (``scores``: ``[N, C, num_tasks]`` served
    probabilities of the truth's candidates).

    User groups: every user side feature and the activity bucket; per user, the error
    is the mean absolute difference between the served probability and the true
    relevance over the user's candidates, and NDCG@k; `equal_error_test` gives the
    ANOVA p-value of "same mean in every group". Item groups: every categorical item
    side feature and the popularity bucket; per group, its share of the candidates, of
    the truth's own top-k and of the model's top-k.
    """
    first = first_truth_task(truth, tasks)
    if first is None:
        return None
    index, task = first
    s, rel, mask = scores[..., index], truth.relevance[task], truth.mask
    with np.errstate(invalid="ignore"):
        error = np.nansum(np.where(mask, np.abs(s - rel), np.nan), axis=1) / mask.sum(axis=1)
    ndcg = ndcg_at_k(s, rel, k, mask)
    user_groups = {
        f.name: truth.user_features[f.name]
        for f in schema.user_features
        if f.name in truth.user_features
    }
    user_groups["activity"] = user_bucket(truth.user_train_impressions, user_thresholds)
    item_groups = {
        f.name: truth.item_features[f.name]
        for f in schema.item_features
        if f.name in truth.item_features and f.dtype != "float32"
    }
    item_groups["popularity"] = item_bucket(truth.candidate_train_impressions, item_quantiles, mask)
    ideal = np.nan_to_num(rel, nan=-1.0)
    exposure = {}
    for name, groups in item_groups.items():
        values, counts = np.unique(groups[mask], return_counts=True)
        base = {str(v): float(c / counts.sum()) for v, c in zip(values, counts, strict=True)}
        exposure[name] = shares_table(
            base, exposure_shares(groups, ideal, k, mask), exposure_shares(groups, s, k, mask)
        )
    return {
        "task": task,
        "k": k,
        "error": "mean |served probability - true relevance| per user",
        "user_groups": {
            name: {"error": equal_error_test(error, g), "ndcg": equal_error_test(ndcg, g)}
            for name, g in user_groups.items()
        },
        "item_exposure": exposure,
    }


def logged_fairness(
    task: str,
    losses: np.ndarray,
    users: np.ndarray,
    groups: dict[str, np.ndarray],
    error: str = "served log-loss per user on the logged rows",
) -> dict[str, Any] | None:
    """Per user group, the served per-row ``losses`` on logged rows (per user: the mean
    over the user's rows) and `equal_error_test` across groups."""
    if not groups:
        return None
    ids, first, inverse = np.unique(users, return_index=True, return_inverse=True)
    per_user = np.bincount(inverse, losses) / np.bincount(inverse)
    return {
        "task": task,
        "error": error,
        "user_groups": {
            name: {"error": equal_error_test(per_user, values[first])}
            for name, values in groups.items()
        },
    }
