import numpy as np
import tensorflow as tf

from tests.layers.support import DEVICE, POSITION
from tfrs_debias.layers import (
    BiasTower,
)
from tfrs_debias.schema import Feature


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


def test_bias_tower_per_cell_logits_equal_the_per_example_path():
    # position (5 values + unknown) x device (2 + unknown): 18 cells. ``call`` runs the
    # MLP once per cell and gathers; ``head(representation(...))`` runs it per example.
    tower = BiasTower([POSITION, DEVICE], num_tasks=2, feature_dropout=0.3)
    assert tower._table_cells == 6 * 3
    feats = {
        "position": tf.constant([0, 4, 2, 7, 1, 3] * 50),  # 7: outside num_values
        "device": tf.constant([b"tv", b"phone", b"tablet"] * 100),  # tablet: unknown
    }
    served = tower(feats).numpy()
    per_example = tower.head(tower.representation(feats)).numpy()
    np.testing.assert_allclose(served, per_example, rtol=1e-5, atol=1e-6)
    assert len(np.unique(served.round(5), axis=0)) == 6  # the 6 (position, device) pairs
    # Training: the same dropout draws (counter reset) drop the same features.
    tower._draws.assign(0)
    trained = tower(feats, training=True).numpy()
    tower._draws.assign(0)
    trained_per_example = tower.head(tower.representation(feats, training=True)).numpy()
    np.testing.assert_allclose(trained, trained_per_example, rtol=1e-5, atol=1e-6)
    assert not np.allclose(trained, served)  # some features were dropped


def test_bias_tower_with_a_float_feature_runs_per_example():
    age = Feature("age_days", "float32", "bias")
    tower = BiasTower([POSITION, age], num_tasks=1)
    assert tower._table_cells == 0
    feats = {"position": tf.constant([0, 1]), "age_days": tf.constant([0.0, 5.0])}
    np.testing.assert_allclose(
        tower(feats).numpy(), tower.head(tower.representation(feats)).numpy(), rtol=1e-6
    )


def test_logit_scale_multiplies_the_logits_of_both_paths():
    feats = {"position": tf.constant([0, 1, 2, 3]), "device": tf.constant([b"tv"] * 4)}
    plain = BiasTower([POSITION, DEVICE], num_tasks=1, feature_dropout=0.0)
    scaled = BiasTower([POSITION, DEVICE], num_tasks=1, feature_dropout=0.0, logit_scale=5.0)
    plain(feats), scaled(feats)
    scaled.set_weights(plain.get_weights())
    np.testing.assert_allclose(scaled(feats).numpy(), 5.0 * plain(feats).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        scaled.logits(scaled.representation(feats)).numpy(), 5.0 * plain(feats).numpy(), rtol=1e-6
    )
    assert scaled.get_config()["logit_scale"] == 5.0
