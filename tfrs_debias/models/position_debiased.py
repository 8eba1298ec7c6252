"""`PositionDebiasedEstimator`: relevance tower + shallow bias tower; serves relevance only.

Two ways to combine (``config.bias_combine``):

* ``"multiply"`` (PAL, Guo et al. RecSys 2019): ``p(click) = σ(s_t(b)) · σ(r_t(u, i))``
  — exactly the position-based click model ``P(seen | position, device) · P(rel)``;
* ``"add"`` (YouTube Watch Next, Zhao et al. RecSys 2019): ``logit = r_t + s_t``.

Popularity (PreRec, arXiv 2310.19251): when the schema has ``popularity`` features
(item popularity / user activity factors), a popularity tower adds ``pop_t(F)`` to the
relevance logit in training, so conformity clicks on popular items land there rather
than in ``r``. Serving intervenes: ``do(F = neutral)`` removes it, or
``config.popularity_keep = κ`` keeps ``κ · (pop(F) − pop(F_neutral))``.

Regularisers that keep the bias tower from absorbing relevance (position is
confounded with relevance because the logging policy ranked by it; arXiv 2212.13937):
bias-feature dropout, observation dropout and gradient reversal from an adversary that
predicts the relevance probabilities from the bias tower's hidden layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.bias_tower import BiasTower
from tfrs_debias.layers.gradient_reversal import GradientReversal
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.models.base import BaseEstimator, Features


def log1mexp(x: tf.Tensor) -> tf.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, computed stably."""
    x = tf.minimum(x, -1e-7)
    return tf.where(x > -math.log(2.0), tf.math.log(-tf.math.expm1(x)), tf.math.log1p(-tf.exp(x)))


def combine_logits(
    relevance: tf.Tensor, bias: tf.Tensor, keep: tf.Tensor, mode: str | Sequence[str]
) -> tf.Tensor:
    """Click logits ``[batch, num_tasks]`` from relevance and bias logits; ``keep`` (0/1)
    switches bias off. ``mode`` is one for all tasks or one per task.

    ``add``: ``r + keep · s``. ``multiply``: the logit of ``σ(r) · σ(s)^keep``.
    """
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    added = relevance + keep * bias
    if set(modes) == {"add"}:
        return added
    log_p = tf.math.log_sigmoid(relevance) + keep * tf.math.log_sigmoid(bias)
    multiplied = log_p - log1mexp(log_p)
    if set(modes) == {"multiply"}:
        return multiplied
    additive = tf.constant([m == "add" for m in modes])
    return tf.where(additive[None, :], added, multiplied)


class PositionDebiasedEstimator(BaseEstimator):
    """Training: ``combine(r_t(u, i), s_t(position, device, ...))``. Serving: ``r_t`` only.

    Without bias features in the schema the bias part is absent and the model is the
    multi-task model.
    """

    def __init__(self, schema, config=None, vocabularies=None, **kwargs):
        super().__init__(schema, config, vocabularies, **kwargs)
        c = self.config
        self.bias_tower = None
        self.adversary = None
        if schema.bias_features:
            self.bias_tower = BiasTower(
                schema.bias_features,
                self.num_tasks,
                c.bias_embedding_dim,
                c.bias_hidden_units,
                c.bias_feature_dropout,
                c.observation_dropout,
                vocabularies=self.vocabularies,
                logit_scale=c.bias_logit_scale,
                name="bias_tower",
            )
            if c.gradient_reversal > 0:
                self.reversal = GradientReversal(c.gradient_reversal, name="reversal")
                self.adversary = keras.layers.Dense(self.num_tasks, name="adversary")
        self.popularity_tower = None
        if schema.popularity_features:
            self.popularity_tower = MLP(
                c.popularity_units, output_units=self.num_tasks, name="popularity_tower"
            )

    @property
    def serves_popularity(self) -> bool:
        """True when the served score keeps some popularity (and so reads its features)."""
        return self.popularity_tower is not None and self.config.popularity_keep > 0

    def popularity_logits(self, features: Features, neutral: bool = False) -> tf.Tensor:
        """``[batch, num_tasks]`` ``pop_t(F)`` from log1p of the popularity factors; with
        ``neutral``, at every factor's neutral value (the intervention)."""
        cols = []
        for f in self.schema.popularity_features:
            x = tf.reshape(tf.cast(features[f.name], tf.float32), [-1])
            if neutral:
                value = 1.0 if f.neutral_value is None else float(f.neutral_value)
                x = tf.fill(tf.shape(x), value)
            cols.append(tf.math.log1p(tf.maximum(x, 0.0)))
        return self.popularity_tower(tf.stack(cols, axis=-1))

    def training_relevance(
        self, features: Features, training: bool = False, indices: Mapping | None = None
    ) -> tf.Tensor:
        """``r + pop(F)``: the relevance logit as the training path uses it; ``indices``
        are the batch's ``embedding.indices`` when the caller has them."""
        r = self.relevance_logits(features, training, indices)
        if self.popularity_tower is not None:
            r += self.popularity_logits(features)
        return r

    def served_relevance(self, features: Features, indices: Mapping | None = None) -> tf.Tensor:
        """``r + κ · (pop(F) − pop(F_neutral))``; just ``r`` when κ = 0."""
        r = self.relevance_logits(features, indices=indices)
        if self.serves_popularity:
            keep = self.config.popularity_keep
            r += keep * (
                self.popularity_logits(features) - self.popularity_logits(features, neutral=True)
            )
        return r

    def uncalibrated_logits(self, features: Features) -> tf.Tensor:
        return self.served_relevance(features)

    def bias_logits(self, features: Features, training: bool = False) -> tf.Tensor:
        """``[batch, num_tasks]`` bias logits ``s_t(b)`` (training path and analysis only)."""
        return self.bias_tower(features, training=training)

    def bias_outputs(self, features: Features, relevance: tf.Tensor, training: bool):
        """``(s, keep_mask, adversary_loss)`` for one batch."""
        if self.bias_tower is None:
            zeros = tf.zeros_like(relevance)
            return zeros, tf.zeros_like(relevance[:, :1]), tf.constant(0.0)
        if self.adversary is None:
            s = self.bias_tower(features, training=training)
            adv_loss = tf.constant(0.0)
        else:  # the adversary reads each example's hidden layer
            hidden = self.bias_tower.representation(features, training=training)
            s = self.bias_tower.logits(hidden)
            # Bounded target (probabilities): the reversed gradient cannot blow it up.
            guess = tf.sigmoid(self.adversary(self.reversal(hidden)))
            target = tf.stop_gradient(tf.sigmoid(relevance))
            err = tf.reduce_mean(tf.square(guess - target), axis=-1)
            adv_loss = self.config.adversary_weight * tf.nn.compute_average_loss(err)
        # Drawn after the bias tower's feature dropout (the order a resumed run replays).
        keep = self.bias_tower.observation_mask(tf.shape(relevance)[0], training)
        return s, keep, adv_loss

    def forward(self, features: Features, training: bool = False) -> dict[str, tf.Tensor]:
        r = self.training_relevance(features, training)
        s, keep, adv_loss = self.bias_outputs(features, r, training)
        logits = combine_logits(r, s, keep, self.bias_combines)
        return {"logits": logits, "aux_loss": adv_loss, "relevance": r, "bias": s}
