"""`FeatureEmbedding`: schema-driven lookups and embeddings for scalar features.

Each feature becomes an index and an embedding:

* ids with a vocabulary (built from training data): ``IntegerLookup`` /
  ``StringLookup`` with one out-of-vocabulary index (0) shared by unseen ids;
* int categoricals with ``num_values``: ``x + 1`` if ``0 <= x < num_values`` else 0;
* strings with a schema vocabulary: ``StringLookup``;
* other ints/strings: ``Hashing`` into ``hash_buckets`` (index 0 unused);
* float features are passed through as ``[batch, 1]`` (no index).

Index 0 always means "unknown": bias-feature dropout sets it on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.unique_rows import UniqueRows
from tfrs_debias.schema import Feature


def vocabulary_arrays(
    vocabularies: Mapping[str, Sequence | np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """Vocabularies as numpy arrays. Keras tracks a layer's list attributes element by
    element (every id visited on each object-graph traversal: export time grew with the
    vocabulary); an array is one leaf."""
    return {k: np.asarray(v) for k, v in (vocabularies or {}).items()}


def vocabulary_lists(vocabularies: Mapping[str, np.ndarray]) -> dict[str, list]:
    """JSON-able lists of `vocabulary_arrays` (for ``get_config`` and files)."""
    return {k: np.asarray(v).tolist() for k, v in vocabularies.items()}


@keras.utils.register_keras_serializable(package="tfrs_debias")
class FeatureEmbedding(keras.layers.Layer):
    """``{name: [batch]} -> {name: [batch, dim]}`` for the features it was built with.

    Args:
      features: `Feature` s (or their dicts) to embed.
      embedding_dim: width of each embedding.
      vocabularies: feature name -> known values (from training data). Features
        without one use their schema ``num_values`` / ``vocabulary``, else hashing.
      hash_buckets: buckets for hashed features. Defaults to 100000.
    """

    def __init__(
        self,
        features: Sequence[Feature | dict],
        embedding_dim: int,
        vocabularies: Mapping[str, Sequence | np.ndarray] | None = None,
        hash_buckets: int = 100_000,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.features = tuple(
            f if isinstance(f, Feature) else Feature.from_dict(f) for f in features
        )
        self.embedding_dim = int(embedding_dim)
        self.vocabularies = vocabulary_arrays(vocabularies)
        self.hash_buckets = int(hash_buckets)
        self._lookups: dict[str, keras.layers.Layer | None] = {}
        self._sizes: dict[str, int] = {}
        self._embeddings: dict[str, keras.layers.Embedding] = {}
        for f in self.features:
            if f.dtype == "float32":
                continue
            lookup, size = self._make_lookup(f)
            self._lookups[f.name] = lookup
            self._sizes[f.name] = size
            self._embeddings[f.name] = keras.layers.Embedding(
                size, self.embedding_dim, name=f"{f.name}_embedding"
            )
        # Sublayers build themselves; some are reached through methods other than
        # __call__, so mark this container built (no "not built" warning on export).
        self.built = True

    def _make_lookup(self, f: Feature) -> tuple[keras.layers.Layer | None, int]:
        vocab = self.vocabularies.get(f.name)
        if vocab is None and f.vocabulary is not None:
            vocab = np.asarray(f.vocabulary)
        if vocab is not None:
            cls = keras.layers.StringLookup if f.dtype == "string" else keras.layers.IntegerLookup
            kwargs = {} if f.dtype == "string" else {"mask_token": None}
            layer = cls(
                vocabulary=np.asarray(vocab), num_oov_indices=1, name=f"{f.name}_lookup", **kwargs
            )
            return layer, len(vocab) + 1
        if f.num_values is not None:
            return None, f.num_values + 1
        return keras.layers.Hashing(self.hash_buckets, name=f"{f.name}_hash"), self.hash_buckets + 1

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def size(self, name: str) -> int:
        """Number of indices of a categorical feature (index 0 = unknown)."""
        return self._sizes[name]

    def index(self, name: str, values: tf.Tensor) -> tf.Tensor:
        """``[batch]`` int64 indices in ``[0, size(name))``."""
        feature = next(f for f in self.features if f.name == name)
        lookup = self._lookups[name]
        if lookup is None:
            values = tf.cast(values, tf.int64)
            inside = (values >= 0) & (values < feature.num_values)
            return tf.where(inside, values + 1, tf.zeros_like(values))
        idx = tf.cast(lookup(values), tf.int64)
        return idx + 1 if isinstance(lookup, keras.layers.Hashing) else idx

    def embed(self, name: str, index: tf.Tensor) -> tf.Tensor:
        return self._embeddings[name](index)

    def build_tables(self) -> None:
        """Creates the embedding tables not yet built, through ``__call__`` on no rows:
        in feature order and under this layer's name, as a first call on a batch
        would (same weight names; a seeded run draws the same initial values)."""
        if all(layer.built for layer in self._embeddings.values()):
            return
        self({f.name: tf.constant([], f.tf_dtype) for f in self.features})

    def table(self, name: str) -> tf.Tensor:
        """``[size(name), embedding_dim]``: the feature's whole embedding table."""
        self.build_tables()
        return self._embeddings[name].embeddings

    def block(
        self, name: str, features: Mapping[str, tf.Tensor], indices: Mapping[str, tf.Tensor]
    ) -> tuple[tf.Tensor, UniqueRows | None]:
        """The feature as an input block of a dense layer (`MLP.call_on_blocks`): a
        table with no more rows than the embedding is wide as the whole table with
        `UniqueRows.of_table` rows (its product with the layer's weights is then taken
        on the table and picked by a one-hot matmul, in fewer multiply-adds and with
        no embedding gather or scatter); any other feature as the batch's
        ``[batch, dim]`` embeddings (floats ``[batch, 1]``), one row per example."""
        size = self._sizes.get(name)
        if size is not None and size <= self.embedding_dim:
            return self.table(name), UniqueRows.of_table(indices[name], size)
        return self.vector(name, features, indices), None

    def vector(
        self, name: str, features: Mapping[str, tf.Tensor], indices: Mapping[str, tf.Tensor]
    ) -> tf.Tensor:
        """One feature of `call`: its ``[batch, dim]`` embedding, or a float feature's
        values as ``[batch, 1]``."""
        if name not in self._sizes:
            return tf.reshape(tf.cast(features[name], tf.float32), [-1, 1])
        return self.embed(name, indices[name])

    def indices(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """``{name: [batch] int64}`` for the categorical features (floats have none)."""
        return {
            f.name: self.index(f.name, tf.reshape(features[f.name], [-1]))
            for f in self.features
            if f.dtype != "float32"
        }

    def row_key(self, indices: Mapping[str, tf.Tensor], names: Sequence[str]) -> tf.Tensor | None:
        """``[batch] int64``, equal for two rows exactly when their ``names`` features
        have the same indices (``Σ_n idx_n · radix_n``); None when one of them is a float
        feature or their cross does not fit in int64."""
        if not names or any(n not in self._sizes for n in names):
            return None
        sizes = [self._sizes[n] for n in names]
        if np.prod([float(s) for s in sizes]) >= 2.0**62:
            return None
        key = indices[names[0]]
        for name, size in zip(names[1:], sizes[1:], strict=True):
            key = key * size + indices[name]
        return key

    def call(
        self,
        features: Mapping[str, tf.Tensor],
        indices: Mapping[str, tf.Tensor] | None = None,
    ) -> dict[str, tf.Tensor]:
        """Each feature's embedding (floats as ``[batch, 1]``); ``indices`` are the
        batch's `indices` when the caller has them already (one lookup per step)."""
        if indices is None:
            indices = self.indices(features)
        return {name: self.vector(name, features, indices) for name in self.names}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": [f.to_dict() for f in self.features],
            "embedding_dim": self.embedding_dim,
            "vocabularies": vocabulary_lists(self.vocabularies),
            "hash_buckets": self.hash_buckets,
        }
