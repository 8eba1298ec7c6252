"""Metrics: ranking quality against true relevance."""

from tfrs_debias.metrics.gap import gap_closed, gap_closed_interval
from tfrs_debias.metrics.ground_truth import (
    candidate_features,
    score_candidates,
    truth_ndcg,
)
from tfrs_debias.metrics.ranking import dcg_at_k, ndcg_at_k, rank_auc

__all__ = [
    "candidate_features",
    "dcg_at_k",
    "gap_closed",
    "gap_closed_interval",
    "ndcg_at_k",
    "rank_auc",
    "score_candidates",
    "truth_ndcg",
]
