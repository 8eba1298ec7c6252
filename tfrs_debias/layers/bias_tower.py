"""`BiasTower`: the shallow tower over bias features (position x device, ...).

YouTube's "Recommending What Video to Watch Next" (RecSys 2019) adds a shallow tower
over selection-bias features to the main model's logit and serves without it. This
tower embeds each bias feature and the cross of all categorical ones (position x
device gets one embedding per cell), then a small MLP gives one bias logit per task.

Training-only regularisers:

* bias-feature dropout: each bias feature is replaced by "unknown" (index 0) with
  probability ``feature_dropout`` (YouTube used 10%): the feature is dropped, not the
  logit;
* observation dropout (arXiv 2212.13937): each example's bias logits are switched off
  with probability ``observation_dropout``, so the relevance tower must explain those
  clicks alone. `BiasTower` returns the keep mask; the estimator applies it.

When every bias feature is categorical (position, device, surface...), the tower's
output depends on the example only through its cell (the tuple of indices, after
dropout), so ``call`` runs the MLP once per cell of the cross and gathers each example's
row: the same logits, at the cost of ``cells`` rows instead of ``batch`` rows (55 against
4096 for 10 positions x 4 devices).

Both draw stateless random numbers from a seed and a counter of training calls kept as a
(non-trainable) weight, so the masks are checkpointed with the model: a killed run
resumed from its backup draws the masks the uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.feature_embedding import (
    FeatureEmbedding,
    vocabulary_arrays,
    vocabulary_lists,
)
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.schema import Feature

MAX_CROSS_SIZE = 1_000_000
#: Up to this many cells, ``call`` computes the tower once per cell and gathers.
MAX_TABLE_CELLS = 4096


@keras.utils.register_keras_serializable(package="tfrs_debias")
class BiasTower(keras.layers.Layer):
    """``{bias feature: [batch]} -> [batch, num_tasks]`` bias logits.

    Args:
      features: the bias `Feature` s.
      num_tasks: logits per example.
      embedding_dim: width of per-feature and crossed embeddings. Defaults to 8.
      hidden_units: the shallow MLP. Defaults to ``(32,)``.
      feature_dropout: probability of dropping each bias feature. Defaults to 0.1.
      observation_dropout: probability of switching an example's bias logit off.
        Defaults to 0.
      vocabularies: feature name -> values seen in training, for bias features the
        schema leaves open (a device name the simulator never writes is one more
        value; a value unseen in training maps to the unknown index).
      logit_scale: the head's output is multiplied by it. Adam's steps do not depend
        on a gradient's scale, so this makes the logits move ``logit_scale`` times as
        fast per step: the bias tower learns that much faster than the relevance
        tower. Defaults to 1.
    """

    def __init__(
        self,
        features: Sequence[Feature | dict],
        num_tasks: int,
        embedding_dim: int = 8,
        hidden_units: Sequence[int] = (32,),
        feature_dropout: float = 0.1,
        observation_dropout: float = 0.0,
        vocabularies: Mapping[str, Sequence | np.ndarray] | None = None,
        logit_scale: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.features = tuple(
            f if isinstance(f, Feature) else Feature.from_dict(f) for f in features
        )
        if not self.features:
            raise ValueError("BiasTower needs at least one bias feature")
        self.num_tasks = int(num_tasks)
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.feature_dropout = float(feature_dropout)
        self.observation_dropout = float(observation_dropout)
        self.logit_scale = float(logit_scale)
        names = {f.name for f in self.features}
        self.vocabularies = {k: v for k, v in vocabulary_arrays(vocabularies).items() if k in names}
        self.embedding = FeatureEmbedding(
            self.features, self.embedding_dim, self.vocabularies, name="bias_embedding"
        )
        self._categorical = [f.name for f in self.features if f.dtype != "float32"]
        sizes = [self.embedding.size(n) for n in self._categorical]
        cells = int(np.prod(sizes)) if sizes else 0  # of the categorical features' cross
        self._cross_size = cells if len(sizes) > 1 else 0
        if self._cross_size > MAX_CROSS_SIZE:
            raise ValueError(
                f"crossing bias features {self._categorical} gives {self._cross_size} "
                f"cells (> {MAX_CROSS_SIZE}); give them smaller vocabularies"
            )
        self._sizes = sizes
        self._radix = [int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))]
        all_categorical = len(self._categorical) == len(self.features)
        self._table_cells = cells if all_categorical and cells <= MAX_TABLE_CELLS else 0
        self.cross_embedding = (
            keras.layers.Embedding(self._cross_size, self.embedding_dim, name="cross_embedding")
            if self._cross_size
            else None
        )
        self.mlp = MLP(self.hidden_units, name="bias_mlp")
        self.head = keras.layers.Dense(self.num_tasks, name="bias_logits")
        self._draws = None
        if self.feature_dropout > 0 or self.observation_dropout > 0:
            # Seeded by Keras' global seed (keras.utils.set_random_seed seeds numpy).
            self._seed = int(np.random.randint(0, 2**31 - 1))
            self._draws = self.add_weight(
                name="dropout_draws",
                shape=(),
                dtype=tf.int64,
                initializer="zeros",
                trainable=False,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        # Sublayers build themselves; some are reached through methods other than
        # __call__, so mark this container built (no "not built" warning on export).
        self.built = True

    def _uniform(self, shape: tf.Tensor, stream: int) -> tf.Tensor:
        """Uniform [0, 1) numbers for one dropout ``stream``, from (seed, training call)."""
        assert self._draws is not None  # (made when a dropout is on)
        draw = self._draws.assign_add(1)
        seed = tf.stack([tf.constant(self._seed + stream, tf.int64), draw])
        return tf.random.stateless_uniform(shape, seed=seed)

    def indices(self, features: Mapping[str, tf.Tensor], training: bool = False) -> dict:
        out = {}
        for stream, name in enumerate(self._categorical):
            idx = self.embedding.index(name, tf.reshape(features[name], [-1]))
            if training and self.feature_dropout > 0:
                drop = self._uniform(tf.shape(idx), stream) < self.feature_dropout
                idx = tf.where(drop, tf.zeros_like(idx), idx)
            out[name] = idx
        return out

    def _cell(self, idx: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """Each example's cell of the cross: ``Σ_n idx_n · radix_n``."""
        return tf.add_n([idx[n] * r for n, r in zip(self._categorical, self._radix, strict=True)])

    def _hidden(self, idx: Mapping[str, tf.Tensor], floats: list[tf.Tensor]) -> tf.Tensor:
        parts = [self.embedding.embed(n, idx[n]) for n in self._categorical]
        if self.cross_embedding is not None:
            parts.append(self.cross_embedding(self._cell(idx)))
        return self.mlp(tf.concat(parts + floats, axis=-1))

    def representation(
        self, features: Mapping[str, tf.Tensor], training: bool = False
    ) -> tf.Tensor:
        """``[batch, hidden_units[-1]]``: the hidden layer the bias logits are read from."""
        floats = [
            tf.reshape(tf.cast(features[f.name], tf.float32), [-1, 1])
            for f in self.features
            if f.dtype == "float32"
        ]
        return self._hidden(self.indices(features, training), floats)

    def cell_logits(self) -> tf.Tensor:
        """``[cells, num_tasks]``: the bias logits of every cell of the cross (every
        combination of the categorical features' indices, unknown included), row
        ``Σ_n idx_n · radix_n``. Only when every bias feature is categorical."""
        cell = tf.range(self._table_cells, dtype=tf.int64)
        idx = {
            n: (cell // r) % size
            for n, r, size in zip(self._categorical, self._radix, self._sizes, strict=True)
        }
        return self.logits(self._hidden(idx, []))

    def logits(self, hidden: tf.Tensor) -> tf.Tensor:
        """``[rows, num_tasks]`` bias logits of hidden representations."""
        return self.head(hidden) * self.logit_scale

    def call(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        if self._table_cells:
            return tf.gather(self.cell_logits(), self._cell(self.indices(features, training)))
        return self.logits(self.representation(features, training))

    def observation_mask(self, batch_size: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[batch, 1]`` float: 0 where an example's bias logit is switched off."""
        if not training or self.observation_dropout <= 0:
            return tf.ones([batch_size, 1])
        keep = self._uniform([batch_size, 1], len(self._categorical)) >= self.observation_dropout
        return tf.cast(keep, tf.float32)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": [f.to_dict() for f in self.features],
            "num_tasks": self.num_tasks,
            "embedding_dim": self.embedding_dim,
            "hidden_units": list(self.hidden_units),
            "feature_dropout": self.feature_dropout,
            "observation_dropout": self.observation_dropout,
            "logit_scale": self.logit_scale,
            "vocabularies": vocabulary_lists(self.vocabularies),
        }
