"""Losses over the rows of one request (a list): listwise softmax and pairwise logistic,
written once here (TF-Ranking, which has them, is frozen on old TensorFlow); and the
doubly robust (DR-JL) terms for ratings missing not at random."""

from tfrs_debias.losses.doubly_robust import doubly_robust_terms
from tfrs_debias.losses.ranking_losses import (
    LIST_LOSSES,
    group_into_lists,
    pairwise_logistic_loss,
    softmax_loss,
)

__all__ = [
    "LIST_LOSSES",
    "doubly_robust_terms",
    "group_into_lists",
    "pairwise_logistic_loss",
    "softmax_loss",
]
