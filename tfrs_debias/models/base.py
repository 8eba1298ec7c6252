"""`BaseEstimator`: what every estimator shares (a `tfrs.Model`).

Feature embeddings driven by the schema, the relevance (user x item) tower, one
``tfrs.tasks.Ranking`` per task (from-logits BCE averaged over the global batch, AUC),
and the split between the training path (``call``: full, biased logits) and the
debiased path (``debiased_logits``: reads no bias feature at all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow_recommenders as tfrs

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.feature_embedding import (
    FeatureEmbedding,
    vocabulary_arrays,
    vocabulary_lists,
)
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.layers.mmoe import MMoE
from tfrs_debias.layers.slice_calibration import SliceCalibration
from tfrs_debias.layers.unique_rows import UniqueRows
from tfrs_debias.losses.ranking_losses import LIST_LOSSES
from tfrs_debias.metrics.list_metrics import ListMRR, ListNDCG
from tfrs_debias.models.config import LIST_LOSS_NAMES, REGRESSION_LOSSES, EstimatorConfig
from tfrs_debias.models.propensity_weighting import PropensityWeighting, check_propensity_config
from tfrs_debias.schema import ImpressionSchema

Features = Mapping[str, tf.Tensor]


def _ranking_task(name: str, loss: str) -> tfrs.tasks.Ranking:
    """The TFRS task of one label: its pointwise loss (per example) and metrics."""
    if loss == "mse":
        return tfrs.tasks.Ranking(
            loss=keras.losses.MeanSquaredError(reduction=keras.losses.Reduction.NONE),
            metrics=[keras.metrics.RootMeanSquaredError(name=f"{name}_rmse")],
            name=f"{name}_task",
        )
    return tfrs.tasks.Ranking(
        loss=keras.losses.BinaryCrossentropy(
            from_logits=True, reduction=keras.losses.Reduction.NONE
        ),
        metrics=[keras.metrics.AUC(from_logits=True, name=f"{name}_auc")],
        name=f"{name}_task",
    )


def check_config(schema: ImpressionSchema, config: EstimatorConfig) -> EstimatorConfig:
    """``config`` with the schema's tasks filled in; a ``ValueError`` naming what is wrong
    when the estimators cannot train with it on ``schema`` (loss vs label kind, list
    losses without request ids, the propensity weighting). Cheap: `train` runs it
    before it writes anything."""
    config = config.with_tasks(schema.tasks, schema.real_valued_tasks)
    binary_only = [
        t
        for t, loss in zip(config.tasks, config.task_losses, strict=True)
        if loss == "bce" and t in schema.real_valued_tasks
    ]
    if binary_only:
        raise ValueError(
            f"tasks {binary_only} have real-valued labels: use task_losses 'mse' or "
            "'weighted_logistic' (or a list loss) for them, not 'bce'"
        )
    check_propensity_config(schema, config)
    if any(x in LIST_LOSS_NAMES for x in config.task_losses) and schema.request_id is None:
        raise ValueError(
            f"task_losses {config.task_losses} need a request_id feature to group rows into lists"
        )
    return config


class BaseEstimator(PropensityWeighting, tfrs.Model):
    """Shared machinery; subclasses define ``forward`` (training) and
    ``uncalibrated_logits`` (what they serve).

    Args:
      schema: the impression schema (ids, side, bias features; tasks = labels).
      config: hyper-parameters; tasks default to the schema's labels.
      vocabularies: id feature -> known ids (from `build_vocabularies`); unseen ids
        share one embedding. Features without one are bounded or hashed.
    """

    def __init__(
        self,
        schema: ImpressionSchema,
        config: EstimatorConfig | None = None,
        vocabularies: Mapping[str, Sequence] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        config = check_config(schema, config or EstimatorConfig())
        self.schema = schema
        self.config = config
        self.vocabularies = vocabulary_arrays(vocabularies)
        self.task_names = tuple(config.tasks)
        self.num_tasks = len(self.task_names)
        self.embedding = FeatureEmbedding(
            schema.relevance_features, config.embedding_dim, self.vocabularies, name="features"
        )
        self.ranking_tasks = [
            _ranking_task(t, loss)
            for t, loss in zip(self.task_names, config.task_losses, strict=True)
        ]
        for task in self.ranking_tasks:  # no weights; a run loaded to export never calls it
            task.built = True
        # Every output of train_step/test_step is a metric result, already aggregated
        # over the replicas by the metric's sync-on-read variables: take it as it is
        # (Keras' default, "sum" across workers, would add the workers' copies).
        self.distribute_reduction_method = "first"
        # Epoch means of the loss (TFRS's train_step reports the last batch's), of each
        # task's loss and of the auxiliary (adversary, anchoring) losses.
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t}_loss") for t in self.task_names]
        self.aux_loss_tracker = keras.metrics.Mean(name="aux_loss")
        # Slate metrics of the first task on validation data (``val_ndcg_10``...): on
        # the served (debiased) score and on the full training-path score.
        self.list_metrics: list[keras.metrics.Metric] = (
            [
                ListNDCG(10, name="ndcg_10"),
                ListMRR(name="mrr"),
                ListNDCG(10, name="ndcg_10_full"),
                ListMRR(name="mrr_full"),
            ]
            if schema.request_id is not None
            else []
        )
        if config.num_experts:
            self.mmoe = MMoE(self.num_tasks, config.num_experts, config.expert_units, name="mmoe")
            self.task_heads = [keras.layers.Dense(1, name=f"{t}_head") for t in self.task_names]
        else:
            self.relevance_mlp = MLP(config.hidden_units, dropout=config.dropout, name="relevance")
            self.relevance_head = keras.layers.Dense(self.num_tasks, name="relevance_logits")
        self.calibration: SliceCalibration | None = None
        if config.slice_calibration:
            self.calibration = SliceCalibration(
                self.num_tasks,
                self.embedding.size(schema.user_id.name),
                self.embedding.size(schema.item_id.name),
                name="slice_calibration",
            )
        self.imputation = self.make_imputation()

    # -- what this estimator serves (the one owner of the served path's inputs) ------
    @property
    def has_bias_part(self) -> bool:
        """True when the training path has a bias part (a bias tower) that serving drops."""
        return getattr(self, "bias_tower", None) is not None

    @property
    def serves_popularity(self) -> bool:
        """True when the served score keeps some popularity (and so reads its features)."""
        return False

    @property
    def served_features(self) -> tuple:
        """The `Feature` s the debiased (served) path reads: ids and side features, plus
        popularity factors when `serves_popularity`. Never a bias feature. Export,
        selector, evaluator and server read this, nothing else decides."""
        served = self.schema.relevance_features
        if self.serves_popularity:
            served += self.schema.popularity_features
        return served

    @property
    def has_components(self) -> bool:
        """True for mixture models that expose ``components`` (a ``components`` signature)."""
        return hasattr(self, "components")

    # -- the relevance side (no bias feature is read here) -----------------------------
    def side_vectors(
        self, features: Features, indices: Mapping[str, tf.Tensor] | None = None
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(user_vec, item_vec, id_interaction)``: concatenated user-side and item-side
        embeddings, and the element-wise product of the user-id and item-id embeddings;
        ``indices`` are the batch's ``embedding.indices`` when the caller has them."""
        emb = self.embedding(features, indices=indices)
        user = [emb[f.name] for f in self.schema.by_role("user_id", "user_feature")]
        item = [emb[f.name] for f in self.schema.by_role("item_id", "item_feature")]
        cross = emb[self.schema.user_id.name] * emb[self.schema.item_id.name]
        return tf.concat(user, axis=-1), tf.concat(item, axis=-1), cross

    def side_blocks(
        self, features: Features, indices: Mapping[str, tf.Tensor]
    ) -> list[tuple[tf.Tensor, UniqueRows | None]]:
        """The user side and the item side on the batch's distinct users / items, for
        towers that read one side only (`MLP.call_on_blocks`): ``(vectors, rows)`` with
        ``rows`` the `UniqueRows` over all of that side's feature indices (``indices``,
        the batch's ``embedding.indices``) and ``vectors`` its embeddings looked up at
        those rows only, so the towers' gradients reach the tables directly rather
        than through the batch's ``[batch, d]`` side vector; the side's `side_vectors`
        (every row) and None for a side with a float feature or a cross too large to
        key."""
        blocks: list[tuple[tf.Tensor, UniqueRows | None]] = []
        vectors = None  # every row's side vectors, looked up once if a side needs them
        for k, side in enumerate(("user", "item")):
            names = [f.name for f in self.schema.by_role(f"{side}_id", f"{side}_feature")]
            key = self.embedding.row_key(indices, names)
            if key is None:
                if vectors is None:
                    vectors = self.side_vectors(features, indices)
                blocks.append((vectors[k], None))
                continue
            rows = UniqueRows.of(key)
            parts = [self.embedding.embed(n, rows.take(indices[n])) for n in names]
            blocks.append((tf.concat(parts, axis=-1), rows))
        return blocks

    def item_vectors(self, item_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``([N, embedding_dim] learned item-id embeddings, [N] known)``: what item
        similarity (re-ranking diversity) reads; ``known`` is False for ids outside the
        training vocabulary (which share one embedding)."""
        name = self.schema.item_id.name
        index = self.embedding.index(name, tf.reshape(item_ids, [-1]))
        return self.embedding.embed(name, index), index > 0

    def pair_vector(self, features: Features) -> tf.Tensor:
        """``[batch, width]``: user-side and item-side embeddings and their id product,
        the relevance tower's input."""
        return tf.concat(self.side_vectors(features), axis=-1)

    def relevance_blocks(
        self, features: Features, indices: Mapping[str, tf.Tensor] | None = None
    ) -> list[tuple[tf.Tensor, UniqueRows | None]]:
        """The relevance tower's input, `pair_vector`'s columns (user side, item side,
        id product), as `MLP.call_on_blocks` blocks, one per feature
        (`FeatureEmbedding.block`: small tables enter whole); ``indices`` are the
        batch's ``embedding.indices`` when the caller has them."""
        if indices is None:
            indices = self.embedding.indices(features)
        self.embedding.build_tables()  # in feature order, as `side_vectors` would
        user, item = self.schema.user_id.name, self.schema.item_id.name
        names = [f.name for f in self.schema.by_role("user_id", "user_feature")]
        names += [f.name for f in self.schema.by_role("item_id", "item_feature")]
        blocks = [self.embedding.block(name, features, indices) for name in names]
        ids = {}
        for name, (x, rows) in zip(names, blocks, strict=True):
            if name in (user, item):
                ids[name] = x if rows is None else self.embedding.embed(name, indices[name])
        blocks.append((ids[user] * ids[item], None))
        return blocks

    def relevance_logits(
        self,
        features: Features,
        training: bool = False,
        indices: Mapping[str, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """``[batch, num_tasks]`` user x item logits ``r_t(u, i)``; ``indices`` are the
        batch's ``embedding.indices`` when the caller has them already (one lookup per
        step)."""
        if self.config.num_experts:
            x = tf.concat(self.side_vectors(features, indices), axis=-1)
            h = self.mmoe(x)  # [B, T, H]
            return tf.concat([head(h[:, t]) for t, head in enumerate(self.task_heads)], axis=-1)
        blocks = self.relevance_blocks(features, indices)
        return self.relevance_head(self.relevance_mlp.call_on_blocks(blocks, training=training))

    def uncalibrated_logits(self, features: Features) -> tf.Tensor:
        """``[batch, num_tasks]`` served logits before the slice calibration (each
        estimator says what it serves); reads no bias feature."""
        return self.relevance_logits(features)

    def debiased_logits(self, features: Features) -> tf.Tensor:
        """``[batch, num_tasks]`` logits served in production: `uncalibrated_logits`,
        corrected by the `SliceCalibration` fitted on a random slice when the model has
        one. Reads no bias feature."""
        logits = self.uncalibrated_logits(features)
        if self.calibration is None:
            return logits
        user, item = self.schema.user_id.name, self.schema.item_id.name
        return self.calibration(
            logits,
            self.embedding.index(user, tf.reshape(features[user], [-1])),
            self.embedding.index(item, tf.reshape(features[item], [-1])),
        )

    def task_values(self, logits: tf.Tensor) -> tf.Tensor:
        """``[batch, num_tasks]`` outputs from logits: probabilities (``σ``) for the
        binary and list losses, the logit itself for ``mse``, ``exp(logit)`` (the
        expected label) for ``weighted_logistic``."""
        columns = []
        for t, loss in enumerate(self.config.task_losses):
            x = logits[:, t]
            if loss == "mse":
                columns.append(x)
            elif loss == "weighted_logistic":
                columns.append(tf.exp(tf.minimum(x, 30.0)))
            else:
                columns.append(tf.sigmoid(x))
        return tf.stack(columns, axis=-1)

    @property
    def bias_combines(self) -> tuple[str, ...]:
        """Per task, how the bias part joins the logit: ``config.bias_combine``, and
        ``add`` for the regression losses."""
        return tuple(
            "add" if loss in REGRESSION_LOSSES else self.config.bias_combine
            for loss in self.config.task_losses
        )

    def debiased_probabilities(self, features: Features) -> tf.Tensor:
        """`task_values` of the served logits (probabilities of binary tasks)."""
        return self.task_values(self.debiased_logits(features))

    def score(self, probabilities: tf.Tensor) -> tf.Tensor:
        """``[batch]`` value-weighted score ``Σ_t w_t · p_t``."""
        weights = tf.constant(self.config.value_weights, tf.float32)
        return tf.linalg.matvec(probabilities, weights)

    # -- training ---------------------------------------------------------------------
    def forward(self, features: Features, training: bool = False) -> dict[str, tf.Tensor]:
        """``{"logits": [batch, num_tasks], "aux_loss": scalar, ...}`` on the training path."""
        return {"logits": self.relevance_logits(features, training), "aux_loss": tf.constant(0.0)}

    def call(self, features: Features, training: bool = False) -> tf.Tensor:
        """Full (biased) training-path logits ``[batch, num_tasks]``."""
        if self.imputation is not None and not self.imputation.built:
            self.imputation(self.pair_vector(features))  # built with the model (optimizer)
        return self.forward(features, training)["logits"]

    def labels(self, features: Features) -> tf.Tensor:
        """``[batch, num_tasks]`` float labels."""
        return tf.stack([tf.cast(features[t], tf.float32) for t in self.task_names], axis=-1)

    def task_loss(
        self,
        labels: tf.Tensor,
        logits: tf.Tensor,
        compute_metrics: bool = True,
        weights: tf.Tensor | None = None,
        list_ids: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """``Σ_t w_t · loss_t``: ``mean(weights · loss_t)`` for the pointwise losses (BCE,
        MSE, or BCE on ``label > 0`` with positives weighted by the label for
        ``weighted_logistic``), or a list loss over the rows of each request
        (``list_ids``), per ``config.task_losses``. Metrics (unweighted) are updated
        when ``compute_metrics``."""
        total = tf.constant(0.0)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for t, (task, weight, kind) in enumerate(
            zip(self.ranking_tasks, self.config.task_weights, self.config.task_losses, strict=True)
        ):
            y = labels[:, t : t + 1]
            sample_weight = None
            if kind == "weighted_logistic":  # positives weighted by their label
                sample_weight = tf.where(y > 0, y, tf.ones_like(y))
                y = tf.cast(y > 0, tf.float32)
            per_example = task(y, logits[:, t : t + 1], compute_metrics=compute_metrics)
            if sample_weight is not None:
                per_example = per_example * tf.reshape(sample_weight, [-1])
            if kind in LIST_LOSSES:
                if list_ids is None:
                    raise ValueError(f"task loss {kind!r} needs the request ids")
                share = LIST_LOSSES[kind](labels[:, t], logits[:, t], list_ids) / replicas
            else:
                if weights is not None:
                    per_example = per_example * weights
                share = tf.nn.compute_average_loss(per_example)
            if compute_metrics:
                self.task_loss_trackers[t].update_state(self._replica_loss(share))
            total += weight * share
        return total

    def compute_loss(self, inputs: Features, training: bool = False) -> tf.Tensor:
        return self._loss(inputs, self.forward(inputs, training=training), training)

    def _loss(
        self, inputs: Features, out: dict[str, tf.Tensor], training: bool = False
    ) -> tf.Tensor:
        labels = self.labels(inputs)
        weights = self.example_weights(inputs)
        request = self.schema.request_id
        list_ids = inputs[request.name] if request is not None and request.name in inputs else None
        aux = out["aux_loss"] + self.extra_loss(out, labels)
        if self.imputation is not None:
            aux += self.doubly_robust_loss(inputs, out["logits"], labels, weights, training)
        self.aux_loss_tracker.update_state(self._replica_loss(aux))
        return self.task_loss(labels, out["logits"], weights=weights, list_ids=list_ids) + aux

    def _replica_loss(self, loss: tf.Tensor) -> tf.Tensor:
        # compute_average_loss divides by the global batch: one replica's share.
        return loss * tf.distribute.get_strategy().num_replicas_in_sync

    def train_step(self, inputs: Features) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            total = loss + tf.add_n(self.losses) if self.losses else loss
        # fit reaches the layers through forward, not __call__: mark the model built
        # (at trace time) so summary() and save_weights work after fit alone.
        self.built = True
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        self.loss_tracker.update_state(self._replica_loss(loss))
        validation_only = {id(m) for m in self.list_metrics}
        return {m.name: m.result() for m in self.metrics if id(m) not in validation_only}

    def test_step(self, inputs: Features) -> dict[str, tf.Tensor]:
        out = self.forward(inputs, training=False)
        loss = self._loss(inputs, out)
        self.loss_tracker.update_state(self._replica_loss(loss))
        if self.list_metrics:
            request = self.schema.request_id
            assert request is not None
            labels = self.labels(inputs)[:, 0]
            ids = inputs[request.name]
            served = self.debiased_logits(inputs)[:, 0]
            full = out["logits"][:, 0]
            for metric, scores in zip(self.list_metrics, (served, served, full, full), strict=True):
                metric.update_state(labels, scores, ids)
        return {m.name: m.result() for m in self.metrics}

    def extra_loss(self, outputs: dict[str, tf.Tensor], labels: tf.Tensor) -> tf.Tensor:
        """Hook for additional losses on the forward outputs (anchoring)."""
        return tf.constant(0.0)

    #: Children only training reads: the optimizer (and its slots: two per weight with
    #: Adam) and the loss trackers and metrics. Checkpoints keep them (a run resumes
    #: with them); SavedModel exports leave them out, since no signature reads them.
    TRAINING_ONLY = (
        "optimizer",
        "loss_tracker",
        "task_loss_trackers",
        "aux_loss_tracker",
        "list_metrics",
        "ranking_tasks",
    )

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # Keras' own Model overrides this hook the same way to leave its train and
        # predict functions out of a SavedModel.
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            for name in self.TRAINING_ONLY:
                children.pop(name, None)
        return children

    def save(self, filepath, *args, **kwargs):
        """Refused: Keras' ``save`` would write a ``serving_default`` that needs the labels
        and bias features and returns biased logits. Export with
        ``tfrs_debias.serving.export_saved_model`` (``tfrs-debias export``) for TF
        Serving, or keep weights with ``save_weights``."""
        raise NotImplementedError(
            f"{type(self).__name__}.save would export the biased training path; use "
            "tfrs_debias.serving.export_saved_model(model, 'saved_models/NAME') (or "
            "`tfrs-debias export`) for the debiased serving signatures, or save_weights"
        )

    def get_config(self) -> dict:
        return {
            "schema": self.schema.to_dict(),
            "config": self.config.to_dict(),
            "vocabularies": vocabulary_lists(self.vocabularies),
        }

    @classmethod
    def from_config(cls, config: dict) -> BaseEstimator:
        return cls(
            ImpressionSchema.from_dict(config["schema"]),
            EstimatorConfig.from_dict(config["config"]),
            config.get("vocabularies"),
        )
