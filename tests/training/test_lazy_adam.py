"""`LazyAdam`: hand-computed sparse steps, Keras Adam's dense step, and the rows it
leaves alone."""

import numpy as np
import pytest

from tfrs_debias.backend import keras, tf
from tfrs_debias.models.config import OPTIMIZERS
from tfrs_debias.training.lazy_adam import LazyAdam, build_optimizer

LR, B1, B2, EPS = 0.1, 0.9, 0.999, 1e-7


def sparse(values, rows, num_rows=4):
    return tf.IndexedSlices(
        tf.constant(values, tf.float32), tf.constant(rows, tf.int64), tf.constant([num_rows, 1])
    )


def test_sparse_steps_by_hand():
    table = tf.Variable(np.ones((4, 1), np.float32))
    opt = LazyAdam(LR, dense_below_rows=0, epsilon=EPS)
    # Step 1: row 1 twice (0.3 + 0.1 = 0.4 once the duplicates are summed), row 3 -0.2.
    opt.apply_gradients([(sparse([[0.3], [0.1], [-0.2]], [1, 1, 3]), table)])
    # m = 0.1 g, v = 0.001 g^2, alpha = 0.1 * sqrt(0.001) / 0.1 = sqrt(0.001):
    # step = sqrt(0.001) * 0.1 g / (sqrt(0.001) |g| + eps) ~= 0.1 * sign(g).
    m1, v1 = 0.1 * 0.4, 0.001 * 0.16
    step1 = np.sqrt(0.001) * m1 / (np.sqrt(v1) + EPS)
    m3, v3 = 0.1 * -0.2, 0.001 * 0.04
    step3 = np.sqrt(0.001) * m3 / (np.sqrt(v3) + EPS)
    np.testing.assert_allclose(table.numpy()[:, 0], [1, 1 - step1, 1, 1 - step3], rtol=1e-6)
    # Step 2: row 3 only, g = 0.5. Row 1 keeps its weight (Keras Adam would move it on
    # its momentum) and its moments.
    opt.apply_gradients([(sparse([[0.5]], [3]), table)])
    m3 = 0.9 * m3 + 0.1 * 0.5
    v3 = 0.999 * v3 + 0.001 * 0.25
    alpha = LR * np.sqrt(1 - 0.999**2) / (1 - 0.9**2)
    expected3 = 1 - step3 - alpha * m3 / (np.sqrt(v3) + EPS)
    np.testing.assert_allclose(table.numpy()[:, 0], [1, 1 - step1, 1, expected3], rtol=1e-6)
    m_slot = opt._momentums[0].numpy()[:, 0]
    np.testing.assert_allclose(m_slot, [0, 0.04, 0, m3], rtol=1e-6)


def test_sparse_on_every_row_equals_keras_adam():
    rng = np.random.default_rng(0)
    lazy_table = tf.Variable(rng.normal(size=(4, 2)).astype(np.float32))
    adam_table = tf.Variable(lazy_table.numpy())
    lazy, adam = LazyAdam(0.01, dense_below_rows=0), keras.optimizers.Adam(0.01)
    for _ in range(3):
        g = rng.normal(size=(4, 2)).astype(np.float32)
        grad = tf.IndexedSlices(tf.constant(g), tf.constant([0, 1, 2, 3], tf.int64))
        lazy.apply_gradients([(grad, lazy_table)])
        adam.apply_gradients([(grad, adam_table)])
    np.testing.assert_allclose(lazy_table.numpy(), adam_table.numpy(), rtol=1e-5)


def test_dense_gradient_is_keras_adam():
    lazy_w, adam_w = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    lazy, adam = LazyAdam(0.05), keras.optimizers.Adam(0.05)
    for g in ([0.3, -0.1], [0.2, 0.4]):
        lazy.apply_gradients([(tf.constant(g), lazy_w)])
        adam.apply_gradients([(tf.constant(g), adam_w)])
    np.testing.assert_allclose(lazy_w.numpy(), adam_w.numpy(), rtol=1e-5)
    # Negative control: the dense path does move (a no-op would pass the equality).
    assert not np.allclose(lazy_w.numpy(), [1.0, -2.0])


def test_dense_update_is_one_fused_op():
    # The tower variables' update is TensorFlow's ResourceApplyAdam kernel, not Keras's
    # dozen element-wise ops per variable (what the step profile counted).
    w, opt = tf.Variable(np.ones((3, 2), np.float32)), LazyAdam(LR)

    @tf.function
    def step(g):
        opt.apply_gradients([(g, w)])

    graph = step.get_concrete_function(tf.TensorSpec([3, 2], tf.float32)).graph.as_graph_def()
    types = {node.op for node in graph.node}
    for fn in graph.library.function:  # the optimizer's update runs in nested functions
        types |= {node.op for node in fn.node_def}
    assert "ResourceApplyAdam" in types
    assert "Sqrt" not in types  # Keras's update: sqrt(v) + epsilon, written out


def test_small_tables_take_the_dense_update():
    # A 4-row table (< dense_below_rows): every row's moments decay, as Keras's Adam does.
    lazy_t, adam_t = (
        tf.Variable(np.ones((4, 1), np.float32)),
        tf.Variable(np.ones((4, 1), np.float32)),
    )
    lazy, adam = LazyAdam(LR, dense_below_rows=8), keras.optimizers.Adam(LR)
    for values, rows in (([[0.3], [-0.2]], [1, 3]), ([[0.5]], [3])):
        lazy.apply_gradients([(sparse(values, rows), lazy_t)])
        adam.apply_gradients([(sparse(values, rows), adam_t)])
    np.testing.assert_allclose(lazy_t.numpy(), adam_t.numpy(), rtol=1e-5)
    assert lazy_t.numpy()[1, 0] != pytest.approx(1 - 0.1, abs=1e-4)  # row 1 moved again


def test_duplicates_are_summed_once_dense_for_small_tables_unique_rows_for_large():
    grad = sparse([[0.3], [0.1], [-0.2]], [1, 1, 3])
    [small] = LazyAdam(LR, dense_below_rows=8)._deduplicate_sparse_grad([grad])
    assert not isinstance(small, tf.IndexedSlices)  # one segment sum, straight to dense
    np.testing.assert_allclose(small.numpy()[:, 0], [0, 0.4, 0, -0.2], rtol=1e-6)
    [large] = LazyAdam(LR, dense_below_rows=0)._deduplicate_sparse_grad([grad])
    assert isinstance(large, tf.IndexedSlices)
    assert large.indices.numpy().tolist() == [1, 3]
    np.testing.assert_allclose(large.values.numpy()[:, 0], [0.4, -0.2], rtol=1e-6)


def test_embedding_gradients_in_a_compiled_step_match_keras_adam():
    # In a tf.function the gather's gradient carries the table's shape as a tensor: the
    # small table (4 rows) must still take the dense update, the large one the lazy.
    def run(opt, rows, dense_below_rows=None):
        table = tf.Variable(np.ones((rows, 1), np.float32))

        @tf.function
        def step(ids, weights):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, ids)[:, 0] * weights)
            opt.apply_gradients([(tape.gradient(loss, table), table)])

        for ids, weights in (([1, 1, 3], [0.3, 0.1, -0.2]), ([3], [0.5])):
            step(tf.constant(ids), tf.constant(weights))
        return table.numpy()[:, 0]

    np.testing.assert_allclose(
        run(LazyAdam(LR, dense_below_rows=8), 4), run(keras.optimizers.Adam(LR), 4), rtol=1e-5
    )
    lazy = run(LazyAdam(LR, dense_below_rows=2), 4)
    adam = run(keras.optimizers.Adam(LR), 4)
    assert lazy[1] == pytest.approx(1 - 0.1, abs=1e-4)  # row 1 not moved by step 2
    assert lazy[1] != pytest.approx(adam[1], abs=1e-4)  # Keras's Adam moved it again


def test_build_optimizer_names():
    assert set(OPTIMIZERS) == {"lazy_adam", "adam"}
    assert isinstance(build_optimizer("lazy_adam", 1e-3), LazyAdam)
    assert type(build_optimizer("adam", 1e-3)) is keras.optimizers.Adam
    with pytest.raises(ValueError, match="sgd"):
        build_optimizer("sgd", 1e-3)
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)


def test_cosine_schedule_decays_to_zero_over_the_planned_steps():
    from tfrs_debias.training.lazy_adam import build_optimizer

    opt = build_optimizer("lazy_adam", 1e-3, "cosine", decay_steps=100)
    schedule = opt._learning_rate
    # 1e-3 * (1 + cos(pi * t / 100)) / 2 at t = 0, 50, 100.
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(50)) == pytest.approx(5e-4)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    constant = build_optimizer("lazy_adam", 1e-3, "constant", decay_steps=100)
    assert float(constant.learning_rate) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="schedule 'linear' is not one of"):
        build_optimizer("lazy_adam", 1e-3, "linear", decay_steps=100)
