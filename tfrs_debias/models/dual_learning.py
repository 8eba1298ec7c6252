"""`DualLearningEstimator`: the dual learning algorithm (DLA; Ai et al., SIGIR 2018).

A ranker ``r_t(u, i)`` and an examination model ``e_t(b)`` (the shallow bias tower over
position, device, ...) learned jointly over the slates of each batch (rows grouped by
``request_id``): each is trained by a click-weighted listwise softmax cross-entropy
whose weights are the other's inverse scores (`dual_learning_losses`): the ranker is
debiased by inverse propensities ``ψ_top / ψ_i``, the examination model by inverse
relevances ``φ_top / φ_i``. The weights are clipped at ``1 / propensity_clip``.

Serving: ``r_t`` (and the popularity intervention), as `PositionDebiasedEstimator`.
Training-path (``biased``) probabilities: ``σ(r_t) · exp(min(0, e_t(b) − e_t(b_top)))``,
``b_top`` the same context at rank 0 — DLA identifies examination only relative to the
top of a list, which is how examination curves are read.
"""

from __future__ import annotations

from tfrs_debias.backend import tf
from tfrs_debias.losses.ranking_losses import dual_learning_losses
from tfrs_debias.metrics.examination import rank_and_context
from tfrs_debias.models.base import Features
from tfrs_debias.models.position_debiased import PositionDebiasedEstimator, log1mexp


class DualLearningEstimator(PositionDebiasedEstimator):
    """Ranker and examination model trained against each other (see the module)."""

    def __init__(self, schema, config=None, vocabularies=None, **kwargs):
        super().__init__(schema, config, vocabularies, **kwargs)
        if schema.request_id is None:
            raise ValueError("dual_learning needs a request_id feature (slates to learn from)")
        if self.bias_tower is None:
            raise ValueError("dual_learning needs bias features (position, device, ...)")
        if any(kind != "bce" for kind in self.config.task_losses):
            raise ValueError(
                "dual_learning learns from binary clicks with its own list losses; its "
                "tasks need binary labels and task_losses left unset"
            )
        self.rank_feature = rank_and_context(schema)[0]

    def forward(self, features: Features, training: bool = False) -> dict[str, tf.Tensor]:
        r = self.training_relevance(features, training)
        e, _, adv_loss = self.bias_outputs(features, r, training)
        log_exam = tf.zeros_like(e)
        if self.rank_feature is not None:
            name = self.rank_feature.name
            top = {**features, name: tf.zeros_like(features[name])}
            e_top = self.bias_tower(top, training=False)
            log_exam = tf.minimum(e - e_top, 0.0)
        log_p = tf.math.log_sigmoid(r) + log_exam
        logits = log_p - log1mexp(log_p)
        return {"logits": logits, "aux_loss": adv_loss, "relevance": r, "bias": e}

    def _loss(
        self, inputs: Features, out: dict[str, tf.Tensor], training: bool = False
    ) -> tf.Tensor:
        labels = self.labels(inputs)
        request = self.schema.request_id
        assert request is not None
        ids = inputs[request.name]
        ranks = None if self.rank_feature is None else inputs[self.rank_feature.name]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        total = out["aux_loss"]
        for t, (task, weight) in enumerate(
            zip(self.ranking_tasks, self.config.task_weights, strict=True)
        ):
            task(labels[:, t : t + 1], out["logits"][:, t : t + 1])  # AUC metrics only
            rank_loss, exam_loss = dual_learning_losses(
                labels[:, t],
                out["relevance"][:, t],
                out["bias"][:, t],
                ids,
                ranks,
                max_weight=1.0 / self.config.propensity_clip,
            )
            self.task_loss_trackers[t].update_state(rank_loss + exam_loss)
            total += weight * (rank_loss + exam_loss) / replicas
        self.aux_loss_tracker.update_state(self._replica_loss(out["aux_loss"]))
        return total
