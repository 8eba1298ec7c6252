import numpy as np
import tensorflow as tf

from tfrs_debias.layers import (
    MixtureOfLogits,
)


def test_mixture_of_logits_is_gate_weighted_sum():
    gates = tf.constant([[[0.1, 0.2, 0.3, 0.4]]])
    comps = tf.constant([[[1.0, 2.0, 3.0, 4.0]]])
    # 0.1*1 + 0.2*2 + 0.3*3 + 0.4*4 = 3.0
    np.testing.assert_allclose(MixtureOfLogits.mix(gates, comps).numpy(), [[3.0]], rtol=1e-6)
    layer = MixtureOfLogits(4, 3)
    g = layer.gate_weights(tf.ones([5, 7]))
    assert g.shape == (5, 3, 4)
    np.testing.assert_allclose(tf.reduce_sum(g, -1).numpy(), np.ones((5, 3)), rtol=1e-6)


def test_gate_softmax_values_and_gradient_by_hand_at_large_logits():
    """Gate weights of logits (1000, 1001, 1002): the softmax of (0, 1, 2), finite; the
    gradient of w·g is the softmax Jacobian's (the max shift carries none)."""
    layer = MixtureOfLogits(3, 1)
    logits = tf.constant([[1000.0, 1001.0, 1002.0]])
    e = np.exp([0.0, 1.0, 2.0])
    s = e / e.sum()  # 0.0900, 0.2447, 0.6652
    w = tf.constant([[[1.0, 0.0, 0.0]]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        g = layer._softmax(logits)
        loss = tf.reduce_sum(w * g)
    np.testing.assert_allclose(g.numpy()[0, 0], s, rtol=1e-5)
    # d s_0 / d z_j = s_0 (1[j = 0] - s_j)
    np.testing.assert_allclose(
        tape.gradient(loss, logits).numpy()[0], s[0] * (np.array([1, 0, 0]) - s), atol=1e-6
    )
