import math

import numpy as np
import pytest
import tensorflow as tf

from tests.models.support import small_model
from tfrs_debias.backend import keras
from tfrs_debias.data import make_dataset
from tfrs_debias.models import (
    MODEL_NAMES,
)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("mmoe", [0, 2])
def test_debiased_path_cannot_see_bias_features(data, name, mmoe):
    schema, batch = data
    model = small_model(schema, name, num_experts=mmoe, item_marginal_alpha=0.5)
    base = model.debiased_logits(batch).numpy()
    moved = dict(batch)
    moved["position"] = tf.reverse(batch["position"], [0])
    moved["device"] = tf.fill(tf.shape(batch["device"]), b"tv")
    np.testing.assert_array_equal(model.debiased_logits(moved).numpy(), base)
    no_bias = {k: v for k, v in batch.items() if k not in ("position", "device")}
    np.testing.assert_array_equal(model.debiased_logits(no_bias).numpy(), base)
    assert base.shape == (256, 2)
    if name != "multi_task":  # the training path does read them
        assert not np.array_equal(model(moved).numpy(), model(batch).numpy())


def test_task_loss_is_weighted_mean_bce(data):
    schema, batch = data
    model = small_model(schema, "multi_task", task_weights=(1.0, 2.0))
    labels = tf.constant([[1.0, 0.0], [0.0, 0.0]])
    logits = tf.constant([[0.0, 0.0], [math.log(3.0), 0.0]])
    # click: mean(ln 2, ln 4) ; like: ln 2 each -> ln 2 · 2
    expected = 0.5 * (math.log(2) + math.log(4)) + 2.0 * math.log(2)
    np.testing.assert_allclose(
        float(model.task_loss(labels, logits, compute_metrics=False)), expected, rtol=1e-5
    )


def test_gradient_reversal_adds_adversary_loss(data):
    schema, batch = data
    model = small_model(schema, "position_debiased", gradient_reversal=0.5)
    out = model.forward(batch, training=True)
    assert 0 < float(out["aux_loss"]) <= 1.0  # MSE between probabilities
    assert float(small_model(schema, "position_debiased").forward(batch)["aux_loss"]) == 0.0


def test_score_is_value_weighted_probability_sum(data):
    schema, _ = data
    model = small_model(schema, "multi_task", value_weights=(1.0, 3.0))
    probs = tf.constant([[0.5, 0.1], [0.2, 0.4]])
    np.testing.assert_allclose(model.score(probs).numpy(), [0.8, 1.4], rtol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_get_config_round_trip_same_outputs(data, name):
    schema, batch = data
    model = small_model(schema, name)
    model(batch)
    clone = type(model).from_config(model.get_config())
    clone(batch)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.debiased_logits(batch), model.debiased_logits(batch))
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_loss_decreases_on_toy_problem(data, small_sim_dir, name):
    schema, _ = data
    model = small_model(schema, name, gradient_reversal=0.2 if name != "multi_task" else 0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    ds = make_dataset(f"{small_sim_dir}/train-*", schema, 1024, seed=0).take(20).cache()
    history = model.fit(ds, epochs=4, verbose=0).history
    losses = [float(x) for x in history["loss"]]
    if name != "dual_learning":  # DLA's weights move with the other model: no fixed objective
        assert losses[-1] < losses[0], losses
    assert history["click_auc"][-1] > 0.6
    # summary() after fit alone lists every trained weight, the bias tower's included.
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    trained = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert f"Trainable params: {trained} " in text
    if model.has_bias_part:
        row = next(line for line in lines if line.strip().startswith("bias_tower"))
        assert int(row.split()[-1]) > 0, row


def test_relevance_tower_on_small_tables_equals_the_concatenated_input(data):
    """Side features with no more values than the embedding is wide (segments: 9
    indices, genres: 13, at width 16) enter the relevance tower as whole tables; the
    logits and every gradient equal the tower on `pair_vector` (the concatenation)."""
    schema, batch = data
    model = small_model(schema, "multi_task", embedding_dim=16)
    blocks = model.relevance_blocks(batch)
    sizes = [None if rows is None else rows.size for _, rows in blocks]
    assert sizes == [None, 9, None, 13, None]  # user id, segment, item id, genre, product
    with tf.GradientTape(persistent=True) as tape:
        got = model.relevance_logits(batch)
        expected = model.relevance_head(model.relevance_mlp(model.pair_vector(batch)))
        loss_got = tf.reduce_sum(got * [1.0, -3.0])
        loss_expected = tf.reduce_sum(expected * [1.0, -3.0])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for v in model.trainable_variables:
        want = tf.convert_to_tensor(tape.gradient(loss_expected, v)).numpy()
        # float32 sums over 256 rows in another order: entries that cancel to ~1e-4
        # differ by ~2e-6, so the tolerance is relative to the gradient's largest entry.
        np.testing.assert_allclose(
            tf.convert_to_tensor(tape.gradient(loss_got, v)),
            want,
            rtol=1e-4,
            atol=1e-4 * np.abs(want).max(),
            err_msg=v.name,
        )
    # at width 8 the tables (9 and 13 rows) are looked up per example instead
    narrow = small_model(schema, "multi_task", embedding_dim=8)
    assert all(rows is None for _, rows in narrow.relevance_blocks(batch))
