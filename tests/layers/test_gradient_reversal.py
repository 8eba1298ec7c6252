import numpy as np
import tensorflow as tf

from tfrs_debias.layers import (
    GradientReversal,
)


def test_gradient_reversal_flips_and_scales_gradient():
    x = tf.constant([1.0, -2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = GradientReversal(0.5)(x)
        loss = tf.reduce_sum(y * tf.constant([1.0, 2.0]))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [-0.5, -1.0])
