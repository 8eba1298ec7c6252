import numpy as np
import tensorflow as tf

from tfrs_debias.layers import UniqueRows


def test_unique_rows_by_hand():
    rows = UniqueRows.of(tf.constant([5, 3, 5, 7, 3], tf.int64))
    # distinct keys in order of first appearance: 5 (row 0), 3 (row 1), 7 (row 3)
    np.testing.assert_array_equal(rows.first, [0, 1, 3])
    np.testing.assert_array_equal(rows.position, [0, 1, 0, 2, 1])
    x = tf.constant([[10.0], [20.0], [11.0], [30.0], [21.0]])
    np.testing.assert_array_equal(rows.take(x), [[10.0], [20.0], [30.0]])
    np.testing.assert_array_equal(rows.spread(tf.constant([1.0, 2.0, 3.0])), [1, 2, 1, 3, 2])


def test_spread_gradient_sums_each_keys_rows():
    rows = UniqueRows.of(tf.constant([5, 3, 5, 7, 3], tf.int64))
    y = tf.Variable([1.0, 2.0, 3.0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(rows.spread(y) * tf.constant([1.0, 10.0, 100.0, 1000.0, 1e4]))
    # key 5: rows 0 and 2 (1 + 100); key 3: rows 1 and 4 (10 + 1e4); key 7: row 3
    grad = tf.convert_to_tensor(tape.gradient(loss, y))
    np.testing.assert_allclose(grad, [101.0, 10010.0, 1000.0])
