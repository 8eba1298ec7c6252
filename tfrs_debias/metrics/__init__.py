"""Metrics: ranking quality against true relevance, examination-curve recovery."""

from tfrs_debias.metrics.ground_truth import (
    candidate_features,
    examination_error,
    learned_examination,
    score_candidates,
    truth_ndcg,
)
from tfrs_debias.metrics.ranking import dcg_at_k, ndcg_at_k

__all__ = [
    "candidate_features",
    "dcg_at_k",
    "examination_error",
    "learned_examination",
    "ndcg_at_k",
    "score_candidates",
    "truth_ndcg",
]
