"""Ranking metrics against graded (true) relevance, as numpy functions."""

from __future__ import annotations

import numpy as np


def dcg_at_k(
    scores: np.ndarray, relevance: np.ndarray, k: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """``[N]`` DCG@k of ranking each row's items by ``scores``.

    ``DCG@k = Σ_{rank < k} relevance / log2(rank + 2)`` (linear gain). Items where
    ``mask`` is False (padding) are never ranked. Ties keep the input order.
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevance = np.nan_to_num(np.asarray(relevance, dtype=np.float64))
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
        relevance = np.where(mask, relevance, 0.0)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    gains = np.take_along_axis(relevance, order, axis=1)
    if mask is not None:
        gains = np.where(np.take_along_axis(mask, order, axis=1), gains, 0.0)
    discounts = 1.0 / np.log2(np.arange(gains.shape[1]) + 2.0)
    return gains @ discounts


def ndcg_at_k(
    scores: np.ndarray, relevance: np.ndarray, k: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """``[N]`` NDCG@k = DCG@k / ideal DCG@k; NaN for rows with no relevant item."""
    dcg = dcg_at_k(scores, relevance, k, mask)
    ideal_scores = np.nan_to_num(np.asarray(relevance, dtype=np.float64))
    ideal = dcg_at_k(ideal_scores, relevance, k, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / ideal, np.nan)


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` for binary ``labels``, exactly, from ranks (Mann-Whitney:
    ``(Σ ranks of positives − P(P+1)/2) / (P·N)``; tied scores share their mean rank,
    so a tie counts one half). NaN when one class is missing."""
    labels = np.asarray(labels).reshape(-1) > 0
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
