"""Gap closed: how much of the distance from the naive model to the ceiling a model
covers, ``(model − naive) / (ceiling − naive)``, with a paired bootstrap interval over
test users.

The ceiling must be a real one: the same model trained on the full-information twin of
the logs (the same slates, every impression examined). When the naive→ceiling gap is
not clearly positive (its bootstrap interval reaches 0), the share is not measurable and
is reported as such instead of as a number (a ceiling below naive gives e.g. −410%).
"""

from __future__ import annotations

import numpy as np


def gap_closed(value: float | None, naive: float | None, ceiling: float | None) -> float | None:
    """``(value − naive) / (ceiling − naive)``; None when the gap is 0 or a value missing."""
    if value is None or naive is None or ceiling is None or ceiling == naive:
        return None
    return (value - naive) / (ceiling - naive)


def gap_closed_interval(
    model: np.ndarray,
    naive: np.ndarray,
    ceiling: np.ndarray,
    num_samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Gap closed on per-user metrics (``[users]``, NaN = user without a value) with a
    paired percentile bootstrap over users.

    Returns ``{"gap", "low", "high", "measurable", "naive_to_ceiling": [low, high]}``;
    ``gap``/``low``/``high`` are None when not measurable (the interval of
    ``ceiling − naive`` includes 0).
    """
    m, n, c = (np.asarray(a, np.float64) for a in (model, naive, ceiling))
    keep = ~(np.isnan(m) | np.isnan(n) | np.isnan(c))
    m, n, c = m[keep], n[keep], c[keep]
    if m.size < 2:
        return {"gap": None, "low": None, "high": None, "measurable": False}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, m.size, size=(num_samples, m.size))
    dm, dn, dc = m[idx].mean(1), n[idx].mean(1), c[idx].mean(1)
    alpha = (1 - level) / 2
    span = dc - dn
    span_low, span_high = np.quantile(span, [alpha, 1 - alpha])
    out = {"naive_to_ceiling": [float(span_low), float(span_high)]}
    if span_low <= 0:
        return {**out, "gap": None, "low": None, "high": None, "measurable": False}
    low, high = np.quantile((dm - dn) / span, [alpha, 1 - alpha])
    point = gap_closed(float(m.mean()), float(n.mean()), float(c.mean()))
    return {**out, "gap": point, "low": float(low), "high": float(high), "measurable": True}
