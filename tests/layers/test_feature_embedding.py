import numpy as np
import tensorflow as tf

from tests.layers.support import DEVICE, POSITION
from tfrs_debias.layers import (
    FeatureEmbedding,
)
from tfrs_debias.schema import Feature


def test_feature_embedding_indices():
    ids = Feature("item_id", "int64", "item_id")
    hashed = Feature("user_id", "int64", "user_id")
    layer = FeatureEmbedding(
        [POSITION, DEVICE, ids, hashed], 4, {"item_id": [10, 20]}, hash_buckets=7
    )
    np.testing.assert_array_equal(layer.index("position", tf.constant([-1, 0, 4, 5])), [0, 1, 5, 0])
    np.testing.assert_array_equal(
        layer.index("device", tf.constant([b"tv", b"phone", b"x"])), [2, 1, 0]
    )
    np.testing.assert_array_equal(
        layer.index("item_id", tf.constant([20, 10, 99], tf.int64)), [2, 1, 0]
    )
    hashed_idx = layer.index("user_id", tf.constant([1, 2, 3, 1000], tf.int64)).numpy()
    assert ((hashed_idx >= 1) & (hashed_idx <= 7)).all()
    assert layer.size("position") == 6 and layer.size("item_id") == 3
    out = layer(
        {
            "position": tf.constant([1]),
            "device": tf.constant([b"tv"]),
            "item_id": tf.constant([10], tf.int64),
            "user_id": tf.constant([5], tf.int64),
        }
    )
    assert all(v.shape == (1, 4) for v in out.values())
