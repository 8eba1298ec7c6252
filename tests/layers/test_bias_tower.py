import numpy as np
import tensorflow as tf

from tests.layers.support import DEVICE, POSITION
from tfrs_debias.layers import (
    BiasTower,
)


def test_bias_tower_dropout_and_cross():
    tower = BiasTower(
        [POSITION, DEVICE], num_tasks=2, feature_dropout=0.999999, observation_dropout=0.5
    )
    feats = {"position": tf.constant([0, 1, 2, 3] * 500), "device": tf.constant([b"tv"] * 2000)}
    idx_train = tower.indices(feats, training=True)
    assert int(tf.reduce_max(idx_train["position"])) == 0  # every feature dropped
    idx = tower.indices(feats, training=False)
    np.testing.assert_array_equal(idx["position"][:4], [1, 2, 3, 4])
    assert tower._radix == [3, 1]  # cell = position_index * |device| + device_index
    assert tower(feats).shape == (2000, 2)
    keep = tower.observation_mask(tf.constant(4000), training=True).numpy()
    assert abs(keep.mean() - 0.5) < 0.05
    assert tower.observation_mask(tf.constant(3), training=False).numpy().tolist() == [[1]] * 3
