import numpy as np
import tensorflow as tf

from tfrs_debias.layers import (
    MMoE,
)


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
