import numpy as np
import pytest
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


def test_table_rows_spread_by_one_hot_by_hand():
    rows = UniqueRows.of_table(tf.constant([2, 0, 2, 1], tf.int64), 3)
    assert rows.first is None and rows.size == 3
    np.testing.assert_array_equal(rows.one_hot(), [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    table = tf.Variable([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])
    with tf.GradientTape() as tape:
        y = rows.spread(table)
        loss = tf.reduce_sum(y * tf.constant([[1.0], [10.0], [100.0], [1000.0]]))
    np.testing.assert_array_equal(y, [[3, -3], [1, -1], [3, -3], [2, -2]])
    # row 0 picked by example 1 (10), row 1 by example 3 (1000), row 2 by 0 and 2 (101)
    np.testing.assert_allclose(tape.gradient(loss, table), [[10, 10], [1000, 1000], [101, 101]])
    with pytest.raises(ValueError, match="no representative row"):
        rows.take(table)
    with pytest.raises(ValueError, match="static size"):
        UniqueRows.of(tf.constant([1, 1], tf.int64)).one_hot()
