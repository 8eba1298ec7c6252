import math

import numpy as np
import tensorflow as tf

from tfrs_debias.models.position_debiased import combine_logits, log1mexp


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
