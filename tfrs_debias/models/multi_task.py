"""`MultiTaskEstimator`: the naive ranker — a shared (or MMoE) tower over user and item
features to one logit per task, trained on the logs as they are."""

from __future__ import annotations

from tfrs_debias.models.base import BaseEstimator


class MultiTaskEstimator(BaseEstimator):
    """``logit_t = r_t(u, i)``; serving uses the same logits (there is no bias part).

    With ``config.num_experts = E > 0`` the tower is a multi-gate mixture of experts
    (one softmax gate per task; Ma et al. KDD 2018, YouTube Watch Next RecSys 2019).
    """
