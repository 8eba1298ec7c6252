import numpy as np
import tensorflow as tf

from tfrs_debias.layers import MLP, UniqueRows


def test_call_on_blocks_equals_call_on_the_concatenation():
    tf.random.set_seed(0)
    mlp = MLP((5,), output_units=2)
    users = UniqueRows.of(tf.constant([7, 7, 8, 7], tf.int64))
    user_rows = tf.random.normal([2, 3])  # one row per distinct user
    item = tf.random.normal([4, 4])  # one row per example
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([user_rows, item])
        full = tf.concat([users.spread(user_rows), item], axis=-1)
        expected = mlp(full)
        got = mlp.call_on_blocks([(user_rows, users), (item, None)])
        loss_expected = tf.reduce_sum(expected * [1.0, -2.0])
        loss_got = tf.reduce_sum(got * [1.0, -2.0])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    for x in [user_rows, item, *mlp.trainable_variables]:
        got_grad, expected_grad = tape.gradient(loss_got, x), tape.gradient(loss_expected, x)
        np.testing.assert_allclose(
            tf.convert_to_tensor(got_grad),
            tf.convert_to_tensor(expected_grad),
            rtol=1e-5,
            atol=1e-6,
        )
    # negative control: a block spread by the wrong rows gives other outputs
    wrong = UniqueRows.of(tf.constant([7, 8, 8, 7], tf.int64))
    other = mlp.call_on_blocks([(user_rows, wrong), (item, None)])
    assert np.abs(other.numpy() - expected.numpy()).max() > 1e-3


def test_call_on_blocks_with_a_table_equals_the_gathered_embeddings():
    """A small table enters whole (`UniqueRows.of_table`): ``one_hot @ (table @ W)``
    equals the first layer on the gathered rows ``table[index]`` in outputs and in the
    gradients of the table, the other block and every weight."""
    tf.random.set_seed(1)
    mlp = MLP((6, 3), output_units=2)
    index = tf.constant([2, 0, 2, 1, 0], tf.int64)
    table = tf.Variable(tf.random.normal([3, 4]))
    users = UniqueRows.of(tf.constant([5, 5, 9, 9, 5], tf.int64))
    user_rows = tf.Variable(tf.random.normal([2, 2]))
    dense = tf.Variable(tf.random.normal([5, 3]))
    weights = tf.constant([[1.0, -2.0]])
    with tf.GradientTape(persistent=True) as tape:
        expected = mlp(
            tf.concat([tf.gather(table, index), users.spread(user_rows), dense], axis=-1)
        )
        got = mlp.call_on_blocks(
            [(table, UniqueRows.of_table(index, 3)), (user_rows, users), (dense, None)]
        )
        loss_expected = tf.reduce_sum(expected * weights)
        loss_got = tf.reduce_sum(got * weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for x in [table, user_rows, dense, *mlp.trainable_variables]:
        np.testing.assert_allclose(
            tf.convert_to_tensor(tape.gradient(loss_got, x)),
            tf.convert_to_tensor(tape.gradient(loss_expected, x)),
            rtol=1e-5,
            atol=1e-6,
        )
    # negative control: the table read at other rows gives other outputs
    other = mlp.call_on_blocks(
        [(table, UniqueRows.of_table(index[::-1], 3)), (user_rows, users), (dense, None)]
    )
    assert np.abs(other.numpy() - expected.numpy()).max() > 1e-3


def test_call_on_blocks_builds_through_call_when_traced_first():
    """An export may trace `call_on_blocks` before any eager call: the first layer is
    then built through ``__call__`` (scoped weight names, initializers lifted out of the
    traced function), and the traced function runs."""
    mlp = MLP((4,), output_units=2, name="gate")
    fn = tf.function(lambda a, b: mlp.call_on_blocks([(a, None), (b, None)]))
    concrete = fn.get_concrete_function(tf.TensorSpec([None, 3]), tf.TensorSpec([None, 2]))
    assert [w.name for w in mlp.weights] == [
        "gate/dense_0/kernel:0",
        "gate/dense_0/bias:0",
        "gate/output/kernel:0",
        "gate/output/bias:0",
    ]
    x = np.ones([2, 3], np.float32)
    y = np.full([2, 2], 0.5, np.float32)
    np.testing.assert_allclose(concrete(x, y), mlp(np.concatenate([x, y], -1)), rtol=1e-6)
