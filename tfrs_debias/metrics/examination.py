"""Learned examination curves: the click probability of the same (user, item) pairs
shown at every rank (in every context), relative to rank 0 — what a model's bias part
learned, read off its full (training-path) probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tfrs_debias.metrics.ground_truth import apply_batched
from tfrs_debias.schema import Feature, ImpressionSchema

ProbFn = Callable[[dict], np.ndarray]


def rank_and_context(schema: ImpressionSchema) -> tuple[Feature | None, Feature | None]:
    """The bias features an examination curve is drawn over: the first integer one (the
    rank / position) and the first string one (the context: device, surface)."""
    rank = next((f for f in schema.bias_features if f.dtype == "int64"), None)
    context = next((f for f in schema.bias_features if f.dtype == "string"), None)
    return rank, context


def examination_probabilities(
    biased: ProbFn,
    pairs: dict[str, np.ndarray],
    rank: Feature,
    context: Feature | None,
    contexts: Sequence,
    num_ranks: int,
    task_index: int = 0,
) -> np.ndarray:
    """``[contexts, ranks, pairs]`` full click probabilities of task ``task_index`` for the
    same (user, item) ``pairs`` shown at every rank in every context: the raw material
    of a learned examination curve (its ratio to rank 0)."""
    size = len(next(iter(pairs.values())))
    out = np.zeros((len(contexts), num_ranks, size))
    for c, value in enumerate(contexts):
        for r in range(num_ranks):
            feats = {**pairs, rank.name: np.full(size, r, np.int64)}
            if context is not None:
                feats[context.name] = np.full(size, str(value).encode(), dtype=object)
            out[c, r] = apply_batched(biased, feats)[:, task_index]
    return out
