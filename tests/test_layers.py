import math

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.backend import keras
from tfrs_debias.layers import (
    MLP,
    BiasTower,
    FeatureEmbedding,
    GradientReversal,
    MixtureOfLogits,
    MMoE,
)
from tfrs_debias.models.position_debiased import combine_logits, log1mexp
from tfrs_debias.schema import Feature

POSITION = Feature("position", "int64", "bias", num_values=5)
DEVICE = Feature("device", "string", "bias", vocabulary=("phone", "tv"))


@pytest.mark.parametrize(
    "layer",
    [
        MLP((4, 3), output_units=2, dropout=0.1),
        GradientReversal(0.5),
        MMoE(2, 3, (4,)),
        MixtureOfLogits(4, 2, (8,)),
        FeatureEmbedding([POSITION, DEVICE], 4, {"x": [1, 2]}),
        BiasTower([POSITION, DEVICE], 2, 4, (8,), 0.1, 0.2),
    ],
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    registered = keras.utils.get_registered_object(f"tfrs_debias>{type(layer).__name__}")
    assert registered is type(layer)


def test_gradient_reversal_flips_and_scales_gradient():
    x = tf.constant([1.0, -2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = GradientReversal(0.5)(x)
        loss = tf.reduce_sum(y * tf.constant([1.0, 2.0]))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [-0.5, -1.0])


def test_mmoe_with_uniform_gates_averages_experts():
    layer = MMoE(num_tasks=2, num_experts=2, expert_units=(3,))
    x = tf.constant([[1.0, 2.0], [0.5, -1.0]])
    layer(x)
    for gate in layer.gates:  # zero gate -> softmax = [1/2, 1/2]
        gate.set_weights([np.zeros_like(w) for w in gate.get_weights()])
    expected = 0.5 * (layer.experts[0](x) + layer.experts[1](x))
    out = layer(x)
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], expected, rtol=1e-6)


def test_mixture_of_logits_is_gate_weighted_sum():
    gates = tf.constant([[[0.1, 0.2, 0.3, 0.4]]])
    comps = tf.constant([[[1.0, 2.0, 3.0, 4.0]]])
    # 0.1*1 + 0.2*2 + 0.3*3 + 0.4*4 = 3.0
    np.testing.assert_allclose(MixtureOfLogits.mix(gates, comps).numpy(), [[3.0]], rtol=1e-6)
    layer = MixtureOfLogits(4, 3)
    g = layer.gate_weights(tf.ones([5, 7]))
    assert g.shape == (5, 3, 4)
    np.testing.assert_allclose(tf.reduce_sum(g, -1).numpy(), np.ones((5, 3)), rtol=1e-6)


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


def test_bias_tower_dropout_and_cross():
    tower = BiasTower(
        [POSITION, DEVICE], num_tasks=2, feature_dropout=0.999999, observation_dropout=0.5
    )
    feats = {"position": tf.constant([0, 1, 2, 3] * 500), "device": tf.constant([b"tv"] * 2000)}
    idx_train = tower.indices(feats, training=True)
    assert int(tf.reduce_max(idx_train["position"])) == 0  # every feature dropped
    idx = tower.indices(feats, training=False)
    np.testing.assert_array_equal(idx["position"][:4], [1, 2, 3, 4])
    assert tower._radix == [3, 1]  # cell = position_index * |device| + device_index
    assert tower(feats).shape == (2000, 2)
    keep = tower.observation_mask(tf.constant(4000), training=True).numpy()
    assert abs(keep.mean() - 0.5) < 0.05
    assert tower.observation_mask(tf.constant(3), training=False).numpy().tolist() == [[1]] * 3


def test_combine_logits_by_hand():
    r, s = tf.constant([[0.0]]), tf.constant([[0.0]])
    one, zero = tf.ones([1, 1]), tf.zeros([1, 1])
    # PAL: p = σ(0)·σ(0) = 1/4 -> logit = log(1/3)
    np.testing.assert_allclose(
        combine_logits(r, s, one, "multiply"), [[math.log(1 / 3)]], rtol=1e-5
    )
    # observation dropout: bias switched off -> p = σ(r)
    np.testing.assert_allclose(combine_logits(r, s, zero, "multiply"), [[0.0]], atol=1e-6)
    np.testing.assert_allclose(
        combine_logits(tf.constant([[1.0]]), tf.constant([[2.0]]), one, "add"), [[3.0]]
    )
    p = 1 / (1 + math.exp(-2.0)) * 1 / (1 + math.exp(1.0))
    np.testing.assert_allclose(
        combine_logits(tf.constant([[2.0]]), tf.constant([[-1.0]]), one, "multiply"),
        [[math.log(p / (1 - p))]],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        log1mexp(tf.constant([-1.0, -1e-3, -30.0])),
        [math.log(1 - math.exp(-1)), math.log(1 - math.exp(-1e-3)), math.log1p(-math.exp(-30))],
        rtol=1e-5,
    )
