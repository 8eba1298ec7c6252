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


def test_row_key_is_mixed_radix_of_indices():
    ids = Feature("item_id", "int64", "item_id")
    score = Feature("score", "float32", "item_feature")
    layer = FeatureEmbedding([POSITION, ids, score], 4, {"item_id": [10, 20]})
    idx = layer.indices(
        {
            "position": tf.constant([0, 4, 0]),
            "item_id": tf.constant([20, 10, 20], tf.int64),
            "score": tf.constant([0.5, 0.1, 0.2]),
        }
    )
    assert set(idx) == {"position", "item_id"}  # floats have no index
    # position indices 1, 5, 1 (size 6); item_id 2, 1, 2 (size 3): key = p * 3 + i
    np.testing.assert_array_equal(layer.row_key(idx, ["position", "item_id"]), [5, 16, 5])
    assert layer.row_key(idx, ["position", "score"]) is None
    wide = FeatureEmbedding(
        [Feature(f"h{i}", "int64", "item_feature") for i in range(4)], 4, hash_buckets=100_000
    )
    hidx = {f"h{i}": tf.constant([1], tf.int64) for i in range(4)}
    assert wide.row_key(hidx, [f"h{i}" for i in range(4)]) is None  # 100001^4 > 2^62


def test_build_tables_draws_what_a_first_call_would():
    """`build_tables` (what the relevance tower's whole-table blocks need first) creates
    every table under the layer's name, in feature order: a seeded model draws the same
    initial tables whether a batch or `block` builds them; `block` gives the whole
    table for a feature with no more values than the width, the batch's rows otherwise."""
    from tfrs_debias.backend import keras

    ids = Feature("item_id", "int64", "item_id")
    score = Feature("score", "float32", "item_feature")
    batch = {
        "position": tf.constant([1, 3]),
        "device": tf.constant([b"tv", b"phone"]),
        "item_id": tf.constant([10, 20], tf.int64),
        "score": tf.constant([0.5, 2.0]),
    }
    tables = {}
    for how in ("batch", "block"):
        keras.utils.set_random_seed(3)
        layer = FeatureEmbedding(
            [POSITION, DEVICE, ids, score], 4, {"item_id": [10, 20]}, name="features"
        )
        if how == "batch":
            layer(batch)
        else:
            x, rows = layer.block("item_id", batch, layer.indices(batch))  # 3 rows <= 4
            assert rows.size == 3 and x.shape == (3, 4)
        tables[how] = {w.name: w.numpy() for w in layer.weights}
    assert (
        sorted(tables["block"])
        == sorted(tables["batch"])
        == [
            "features/device_embedding/embeddings:0",
            "features/item_id_embedding/embeddings:0",
            "features/position_embedding/embeddings:0",
        ]
    )
    for name, value in tables["batch"].items():
        np.testing.assert_array_equal(tables["block"][name], value)
    # position: 6 indices > 4 wide, one row per example; a float feature, its value
    x, rows = layer.block("position", batch, layer.indices(batch))
    assert rows is None and x.shape == (2, 4)
    x, rows = layer.block("score", batch, layer.indices(batch))
    np.testing.assert_array_equal(x, [[0.5], [2.0]])
