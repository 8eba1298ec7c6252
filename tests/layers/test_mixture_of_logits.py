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
