"""Scoring a model against a `GroundTruth`: NDCG of the debiased scores on the truth's
candidates. (The learned examination curve is measured by `Evaluator.examination`,
from any model's ``biased`` path.)"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.metrics.ranking import ndcg_at_k
from tfrs_debias.schema import ImpressionSchema

ScoreFn = Callable[[dict[str, tf.Tensor]], tf.Tensor]


def candidate_features(truth: GroundTruth, schema: ImpressionSchema) -> dict[str, np.ndarray]:
    """Relevance features for every (test user, candidate) pair, flattened to ``[N*C]``."""
    n, c = truth.candidates.shape
    feats = {
        schema.user_id.name: np.repeat(truth.users, c),
        schema.item_id.name: truth.candidates.reshape(-1),
    }
    for f in schema.user_features:
        feats[f.name] = np.repeat(truth.user_features[f.name], c)
    for f in schema.item_features:
        feats[f.name] = truth.item_features[f.name].reshape(-1)
    for f in schema.popularity_features:  # factors the truth carries, else neutral
        if f.name in truth.item_features:
            feats[f.name] = truth.item_features[f.name].reshape(-1).astype(np.float32)
        elif f.name in truth.user_features:
            feats[f.name] = np.repeat(truth.user_features[f.name], c).astype(np.float32)
        else:
            neutral = 1.0 if f.neutral_value is None else float(f.neutral_value)
            feats[f.name] = np.full(n * c, neutral, np.float32)
    return feats


def score_candidates(
    score_fn: ScoreFn, truth: GroundTruth, schema: ImpressionSchema, batch_size: int = 65536
) -> np.ndarray:
    """``[N, C, num_tasks]`` outputs of ``score_fn`` (e.g. ``model.debiased_logits``)."""
    out = apply_batched(score_fn, candidate_features(truth, schema), batch_size)
    return out.reshape(truth.candidates.shape + out.shape[1:])


def apply_batched(
    fn: ScoreFn, features: dict[str, np.ndarray], batch_size: int = 65536
) -> np.ndarray:
    """``fn`` over ``features`` (numpy columns) in batches, outputs concatenated."""
    total = len(next(iter(features.values())))
    outs = [
        np.asarray(fn({k: tf.constant(v[s : s + batch_size]) for k, v in features.items()}))
        for s in range(0, total, batch_size)
    ]
    return np.concatenate(outs)


def truth_ndcg(scores: np.ndarray, truth: GroundTruth, task: str, k: int = 10) -> np.ndarray:
    """``[N]`` NDCG@k per test user of ``scores [N, C]`` against true relevance of ``task``."""
    return ndcg_at_k(scores, truth.relevance[task], k, truth.mask)
