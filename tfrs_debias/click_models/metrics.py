"""Click-model metrics (Chuklin et al., *Click Models for Web Search*, Ch. 4): log-
likelihood and perplexity, per rank and overall.

``perplexity_r = 2 ** (−(1/N_r) Σ_i [c_i log2 p_i + (1 − c_i) log2 (1 − p_i)])`` over the
N_r impressions at rank r; the overall perplexity is the mean of the per-rank values
(1 is perfect, 2 is a coin flip). The log-likelihood is the mean natural log of the
probability given to what happened.
"""

from __future__ import annotations

import numpy as np


def log_likelihood(clicks: np.ndarray, probs: np.ndarray) -> float:
    """Mean ``c ln p + (1 − c) ln (1 − p)``."""
    p = np.clip(np.asarray(probs, np.float64), 1e-9, 1 - 1e-9)
    c = np.asarray(clicks, np.float64)
    return float(np.mean(c * np.log(p) + (1 - c) * np.log1p(-p)))


def perplexity_by_rank(clicks: np.ndarray, probs: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``[num_ranks]`` per-rank perplexity (NaN for ranks without impressions)."""
    p = np.clip(np.asarray(probs, np.float64), 1e-9, 1 - 1e-9)
    c = np.asarray(clicks, np.float64)
    ranks = np.asarray(ranks, np.int64)
    bits = c * np.log2(p) + (1 - c) * np.log2(1 - p)
    n = np.bincount(ranks)
    total = np.bincount(ranks, bits, minlength=n.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 2.0 ** (-total / np.maximum(n, 1)), np.nan)


def perplexity(clicks: np.ndarray, probs: np.ndarray, ranks: np.ndarray) -> float:
    """Mean over ranks of `perplexity_by_rank`."""
    return float(np.nanmean(perplexity_by_rank(clicks, probs, ranks)))
