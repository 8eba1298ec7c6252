"""`AnchoredFactorizedEstimator`: the factorized mixture plus a BCE loss on each of the
user-only, item-only and bias components, so each is anchored to its own marginal and
the interaction component keeps only what the (user, item) pair explains."""

from __future__ import annotations

from tfrs_debias.backend import tf
from tfrs_debias.models.factorized import COMPONENTS, FactorizedEstimator


class AnchoredFactorizedEstimator(FactorizedEstimator):
    """Loss: ``Σ_t w_t BCE(y_t, mix_t) + Σ_k λ_k Σ_t w_t BCE(y_t, comp_k,t)`` for k in
    (user, item, bias), ``λ = config.anchor_weights``."""

    def __init__(self, schema, config=None, vocabularies=None, **kwargs):
        super().__init__(schema, config, vocabularies, **kwargs)
        if schema.real_valued_tasks:
            raise ValueError(
                "anchored_factorized anchors each component with BCE on binary labels; "
                f"tasks {list(schema.real_valued_tasks)} are real-valued (use factorized)"
            )

    def extra_loss(self, outputs: dict[str, tf.Tensor], labels: tf.Tensor) -> tf.Tensor:
        task_w = tf.constant(self.config.task_weights, tf.float32)
        total = tf.constant(0.0)
        for k, weight in zip((1, 2, 3), self.config.anchor_weights, strict=True):
            if weight == 0 or (k == 3 and self.bias_tower is None):
                continue
            bce = tf.nn.sigmoid_cross_entropy_with_logits(labels, outputs[COMPONENTS[k]])
            total += weight * tf.nn.compute_average_loss(tf.linalg.matvec(bce, task_w))
        return total
