"""`TruthNDCGLogger`: with simulated (or converted) logs that carry a ground truth, the
served scores' NDCG@k against the true relevance after every epoch (``truth_ndcg_10``
in the epoch logs, so in the history and TensorBoard): what the debiased model is
learning, not only how well it fits the biased clicks."""

from __future__ import annotations

import numpy as np

from tfrs_debias.backend import keras
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.metrics.ground_truth import score_candidates, truth_ndcg
from tfrs_debias.schema import ImpressionSchema


class TruthNDCGLogger(keras.callbacks.Callback):
    """Mean NDCG@``k`` of the served (debiased) outputs of the first task the truth
    has, over a fixed sample of ``users`` of its test users.

    Args:
      truth: the dataset's `GroundTruth`.
      schema: the model's schema.
      k: the cut-off. Defaults to 10.
      users: test users sampled (the same every epoch). Defaults to 300.
      seed: the sample's seed.
    """

    def __init__(
        self,
        truth: GroundTruth,
        schema: ImpressionSchema,
        k: int = 10,
        users: int = 300,
        seed: int = 0,
    ):
        super().__init__()
        n = len(truth.users)
        rows = np.sort(np.random.default_rng(seed).choice(n, min(users, n), replace=False))
        self.truth = GroundTruth(
            users=truth.users[rows],
            candidates=truth.candidates[rows],
            relevance={t: v[rows] for t, v in truth.relevance.items()},
            user_train_impressions=truth.user_train_impressions[rows],
            candidate_train_impressions=truth.candidate_train_impressions[rows],
            user_features={f: v[rows] for f, v in truth.user_features.items()},
            item_features={f: v[rows] for f, v in truth.item_features.items()},
        )
        self.schema = schema
        self.k = int(k)
        self.name = f"truth_ndcg_{self.k}"

    def on_epoch_end(self, epoch, logs=None):
        tasks = [t for t in self.schema.tasks if t in self.truth.relevance]
        if not tasks or logs is None:
            return
        index = self.schema.tasks.index(tasks[0])
        scores = score_candidates(
            lambda f: self.model.debiased_probabilities(f), self.truth, self.schema
        )
        logs[self.name] = float(
            np.nanmean(truth_ndcg(scores[..., index], self.truth, tasks[0], self.k))
        )
