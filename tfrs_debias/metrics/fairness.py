"""Fairness and exposure across groups, as numpy functions.

"Fair" here is the engineering definition: the model's error is the same across user
groups (tested with a one-way ANOVA, and a Welch t-test on the two groups furthest
apart, Bonferroni-corrected over all pairs), and item groups get a share of the top-k
slots close to the share they would get if ranked by true relevance.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping

import numpy as np


def equal_error_test(values: np.ndarray, groups: np.ndarray, min_size: int = 2) -> dict:
    """Tests that ``values`` (one per unit, e.g. a per-user error) have the same mean in
    every group of ``groups``.

    Returns ``{"groups": {g: {"n", "mean", "sem"}}, "anova_f", "anova_p",
    "worst_pair", "worst_pair_p"}``: the one-way ANOVA F statistic and p-value over the
    groups with at least ``min_size`` finite values, and for the two groups with the
    most different means, the Welch t-test p-value times the number of pairs (capped at
    1). Tests are None when fewer than two groups qualify. NaN values are dropped.
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    summary: dict[str, dict] = {}
    samples: dict[str, np.ndarray] = {}
    for g in np.unique(groups):
        v = values[groups == g]
        sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else None
        summary[str(g)] = {"n": int(v.size), "mean": float(v.mean()), "sem": sem}
        if v.size >= min_size:
            samples[str(g)] = v
    out: dict = {
        "groups": summary,
        "anova_f": None,
        "anova_p": None,
        "worst_pair": None,
        "worst_pair_p": None,
    }
    if len(samples) < 2:
        return out
    if all(np.ptp(v) == 0 for v in samples.values()):
        same = len({float(v[0]) for v in samples.values()}) == 1
        out["anova_f"], out["anova_p"] = (0.0, 1.0) if same else (float("inf"), 0.0)
    pairs = list(itertools.combinations(sorted(samples), 2))
    a, b = max(pairs, key=lambda ab: abs(samples[ab[0]].mean() - samples[ab[1]].mean()))
    with warnings.catch_warnings():  # nearly equal values are a valid answer here
        warnings.simplefilter("ignore", RuntimeWarning)
        if out["anova_f"] is None:
            f, p = stats.f_oneway(*samples.values())
            out["anova_f"], out["anova_p"] = float(f), float(p)
        t = stats.ttest_ind(samples[a], samples[b], equal_var=False)
    p = float(t.pvalue) if np.isfinite(t.pvalue) else 1.0
    out["worst_pair"] = [a, b]
    out["worst_pair_p"] = min(1.0, p * len(pairs))
    return out


def exposure_shares(
    groups: np.ndarray,
    scores: np.ndarray,
    k: int,
    mask: np.ndarray | None = None,
) -> dict[str, float]:
    """Share of the top-``k`` slots (ranking each row by ``scores [N, C]``) taken by
    each value of ``groups [N, C]``; padded entries (``mask`` False) are never ranked."""
    groups = np.asarray(groups)
    scores = np.asarray(scores, dtype=np.float64)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(groups, order, axis=1)
    if mask is not None:
        top = top[np.take_along_axis(mask, order, axis=1)]
    top = top.reshape(-1)
    if top.size == 0:
        return {}
    values, counts = np.unique(top, return_counts=True)
    return {str(v): float(c / top.size) for v, c in zip(values, counts, strict=True)}


def intra_list_similarity(categories: np.ndarray) -> float:
    """Share of pairs in one list that share a category (1: all alike, 0: all
    different); NaN for lists of fewer than two items."""
    categories = np.asarray(categories).reshape(-1)
    n = categories.size
    if n < 2:
        return float("nan")
    same = (categories[:, None] == categories[None, :]).sum() - n
    return float(same / (n * (n - 1)))


def shares_table(
    candidates: Mapping[str, float], truth: Mapping[str, float], model: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """``{group: {"candidates", "truth", "model"}}`` shares (0 where a group is absent)."""
    names = sorted(set(candidates) | set(truth) | set(model))
    return {
        g: {
            "candidates": float(candidates.get(g, 0.0)),
            "truth": float(truth.get(g, 0.0)),
            "model": float(model.get(g, 0.0)),
        }
        for g in names
    }
