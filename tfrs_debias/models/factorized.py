"""`FactorizedEstimator`: a mixture of user x item, user-only, item-only and bias logits.

``logit_t = Σ_k g_k,t · comp_k,t`` with components ``r_t(u, i)``, ``a_t(u)``,
``c_t(i)``, ``s_t(b)`` and softmax gate weights ``g`` computed from the user and item
features (mixture of logits, Zhai et al. arXiv 2306.04039). Serving drops the user-only
and item-only marginals — a PMI-style score that keeps power users and popular items
from dominating — and the bias component; a fraction α of the item marginal can be
added back: ``(g_r · r + α · g_c · c) / (g_r + α · g_c)``, renormalised over the
served components.
"""

from __future__ import annotations

from tfrs_debias.backend import tf
from tfrs_debias.layers.mixture_of_logits import MixtureOfLogits
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.models.base import Features
from tfrs_debias.models.position_debiased import PositionDebiasedEstimator

COMPONENTS = ("interaction", "user", "item", "bias")


class FactorizedEstimator(PositionDebiasedEstimator):
    """Four component logits per task mixed by a softmax gate; serves the interaction."""

    def __init__(self, schema, config=None, vocabularies=None, **kwargs):
        super().__init__(schema, config, vocabularies, **kwargs)
        c = self.config
        self.user_tower = MLP(c.component_units, output_units=self.num_tasks, name="user_only")
        self.item_tower = MLP(c.component_units, output_units=self.num_tasks, name="item_only")
        self.mixture = MixtureOfLogits(
            len(COMPONENTS), self.num_tasks, c.gate_units, name="mixture"
        )

    def components(self, features: Features, training: bool = False) -> dict[str, tf.Tensor]:
        """``{"components": [B, T, 4], "gates": [B, T, 4], "aux_loss", "keep"}`` in
        `COMPONENTS` order (the bias component already masked by observation dropout)."""
        user, item, _ = self.side_vectors(features)
        r = self.training_relevance(features, training)
        s, keep, adv_loss = self.bias_outputs(features, r, training)
        comps = tf.stack([r, self.user_tower(user), self.item_tower(item), keep * s], axis=-1)
        gates = self.mixture.gate_weights(tf.concat([user, item], axis=-1))
        return {"components": comps, "gates": gates, "aux_loss": adv_loss}

    def forward(self, features: Features, training: bool = False) -> dict[str, tf.Tensor]:
        out = self.components(features, training)
        out["logits"] = MixtureOfLogits.mix(out["gates"], out["components"])
        return out

    def debiased_logits(self, features: Features) -> tf.Tensor:
        alpha = self.config.item_marginal_alpha
        r = self.served_relevance(features)
        if alpha == 0:
            return r
        user, item, _ = self.side_vectors(features)
        gates = self.mixture.gate_weights(tf.concat([user, item], axis=-1))
        g_r, g_c = gates[..., 0], gates[..., 2]
        return (g_r * r + alpha * g_c * self.item_tower(item)) / (g_r + alpha * g_c)
