"""`SliceCalibration`: the identity until fitted, then ``a + b·z + c·log(1 + n_item) +
d·log(1 + n_user)`` per task, by hand."""

import math

import numpy as np
import tensorflow as tf

from tfrs_debias.layers import SliceCalibration


def test_identity_until_fitted():
    layer = SliceCalibration(num_tasks=2, num_users=4, num_items=3)
    logits = tf.constant([[0.5, -1.0], [2.0, 0.0]])
    out = layer(logits, tf.constant([1, 3]), tf.constant([2, 0]))
    np.testing.assert_allclose(out.numpy(), logits.numpy())
    assert layer.trainable_weights == []  # fitted on the slice, never by the optimizer


def test_fitted_weights_and_counts_by_hand():
    layer = SliceCalibration(num_tasks=2, num_users=3, num_items=3)
    # Index 0 is the unknown id (count 0); item 1 was seen e - 1 times, so log(1 + n) = 1.
    layer.set_counts(user_counts=[0, 3, 0], item_counts=[0, math.e - 1, 7])
    layer.set_task_weights(0, [-1.0, 0.5, 2.0, 1.0])
    layer.set_task_weights(1, [0.0, 1.0, 0.0, -1.0])
    logits = tf.constant([[2.0, 1.0], [4.0, -1.0]])
    out = layer(logits, user_index=tf.constant([1, 0]), item_index=tf.constant([1, 2])).numpy()
    # Row 0: user 1 (log 4), item 1 (log e = 1).
    #   task 0: -1 + 0.5·2 + 2·1 + 1·log 4 = 2 + 1.386294; task 1: 1 - log 4.
    # Row 1: unknown user (0), item 2 (log 8).
    #   task 0: -1 + 0.5·4 + 2·log 8 = 1 + 4.158883; task 1: -1.
    expected = [
        [2 + math.log(4), 1 - math.log(4)],
        [1 + 2 * math.log(8), -1.0],
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
