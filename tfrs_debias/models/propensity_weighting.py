"""`PropensityWeighting`: what an estimator does with logged propensities.

Inverse-propensity weights of the loss (IPS, self-normalised SNIPS, clipped) and the
doubly robust joint learning (DR-JL) terms with their imputation model; the checks of a
config's weighting against the schema. `BaseEstimator` mixes this in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tfrs_debias.backend import tf
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.losses.doubly_robust import doubly_robust_terms
from tfrs_debias.models.config import EstimatorConfig, doubly_robust_fits
from tfrs_debias.schema import ImpressionSchema

Features = Mapping[str, tf.Tensor]


def check_propensity_config(schema: ImpressionSchema, config: EstimatorConfig) -> None:
    """A ``ValueError`` when ``config.propensity_weighting`` cannot train on ``schema``."""
    if config.propensity_weighting != "none" and schema.propensity is None:
        raise ValueError(
            f"propensity_weighting {config.propensity_weighting!r} needs a propensity "
            "feature (role 'propensity') in the logs; `tfrs-debias ratings` writes an "
            "estimated one, `convert --propensity` maps a logged one"
        )
    if config.propensity_weighting == "dr" and (
        set(config.task_losses) != {"bce"} or not doubly_robust_fits(schema)
    ):
        raise ValueError(
            "propensity_weighting 'dr' (doubly robust) is for ratings data: binary tasks "
            "with task loss 'bce' and no bias or popularity features (on click logs the "
            "bias tower is the correction); use 'ips' or 'snips' there"
        )
    if (
        config.propensity_weighting == "dr"
        and config.dr_pairs == "uniform"
        and schema.by_role("item_feature")
    ):
        raise ValueError(
            "dr_pairs 'uniform' draws item ids alone and cannot know their side features "
            f"{[f.name for f in schema.by_role('item_feature')]}; use dr_pairs 'batch'"
        )


class PropensityWeighting:
    """Mixin of `BaseEstimator` (reads ``config``, ``schema``, ``num_tasks``,
    ``forward`` and ``pair_vector``; ``imputation`` is set from `make_imputation`)."""

    config: EstimatorConfig
    schema: ImpressionSchema
    num_tasks: int
    imputation: MLP | None
    forward: Callable[..., dict[str, Any]]
    vocabularies: dict[str, Any]
    pair_vector: Callable[[Features], tf.Tensor]

    def make_imputation(self) -> MLP | None:
        """The imputation model of ``"dr"`` (None otherwise)."""
        if self.config.propensity_weighting != "dr":
            return None
        return MLP(self.config.imputation_units, output_units=self.num_tasks, name="imputation")

    def example_weights(self, features: Features) -> tf.Tensor | None:
        """``[batch]`` inverse-propensity weights of the loss, or None (unweighted).

        ``propensity_weighting``: ``"ips"`` weighs each example by ``1 / max(p, clip)``
        (the logged propensity ``p``, clipped from below: at most ``1 / clip``);
        ``"snips"`` divides those by their batch mean (self-normalised: lower variance,
        the weights average 1)."""
        mode = self.config.propensity_weighting
        if mode == "none":
            return None
        prop = self.schema.propensity
        assert prop is not None  # (checked in __init__)
        p = tf.reshape(tf.cast(features[prop.name], tf.float32), [-1])
        weights = 1.0 / tf.maximum(p, self.config.propensity_clip)
        if mode in ("snips", "dr"):
            weights = weights / tf.reduce_mean(weights)
        return weights

    def doubly_robust_pairs(self, inputs: Features) -> dict[str, tf.Tensor]:
        """The unobserved pairs of a batch whose error DR imputes: each row's user with
        the previous row's item (``dr_pairs="batch"``), or with an item id drawn
        uniformly from the training vocabulary (``"uniform"``; stateless draws keyed by
        the optimizer's step, so a resumed run draws what an uninterrupted one does)."""
        sampled = dict(inputs)
        item = self.schema.item_id.name
        vocabulary = self.vocabularies.get(item)
        if self.config.dr_pairs == "uniform" and vocabulary is not None and len(vocabulary):
            ids = inputs[item]
            optimizer = getattr(self, "optimizer", None)
            step = tf.constant(0, tf.int64) if optimizer is None else optimizer.iterations
            seed = tf.stack([tf.cast(step, tf.int64), tf.constant(0x5D5, tf.int64)])
            index = tf.random.stateless_uniform(
                tf.shape(ids), seed=seed, maxval=len(vocabulary), dtype=tf.int64
            )
            sampled[item] = tf.cast(tf.gather(tf.constant(vocabulary), index), ids.dtype)
            return sampled
        for f in self.schema.by_role("item_id", "item_feature"):
            sampled[f.name] = tf.roll(inputs[f.name], shift=1, axis=0)
        return sampled

    def doubly_robust_loss(
        self,
        inputs: Features,
        logits: tf.Tensor,
        labels: tf.Tensor,
        weights: tf.Tensor,
        training: bool = False,
    ) -> tf.Tensor:
        """DR-JL's terms beyond the weighted error (`doubly_robust_terms`): the imputed
        error on sampled pairs (`doubly_robust_pairs`) minus its weighted value on the
        observed pairs, plus the imputation model's loss."""
        sampled = self.doubly_robust_pairs(inputs)
        assert self.imputation is not None  # (made when propensity_weighting is "dr")
        sampled_logits = self.forward(sampled, training=training)["logits"]
        imputed = self.imputation(tf.stop_gradient(self.pair_vector(inputs)))
        sampled_imputed = self.imputation(tf.stop_gradient(self.pair_vector(sampled)))
        total = tf.constant(0.0)
        for t, weight in enumerate(self.config.task_weights):
            terms = doubly_robust_terms(
                labels[:, t],
                logits[:, t],
                imputed[:, t],
                sampled_logits[:, t],
                sampled_imputed[:, t],
                weights,
            )
            total += weight * tf.nn.compute_average_loss(terms["imputed"] + terms["imputation"])
        return total
