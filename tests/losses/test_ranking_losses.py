"""Ranking losses against values worked out by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.losses import group_into_lists, pairwise_logistic_loss, softmax_loss

# Rows of three requests, interleaved as a shuffled batch has them:
# A = (rows 0, 3), B = (rows 1, 4, 5), C = (rows 2, 6) without a positive.
IDS = tf.constant([7, 9, 5, 7, 9, 9, 5], tf.int64)


LABELS = tf.constant([1, 0, 0, 0, 1, 1, 0])


LOGITS = tf.constant([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0])


def test_rows_are_grouped_by_request_in_batch_order():
    index, num_lists, max_size = group_into_lists(IDS)
    assert int(num_lists) == 3 and int(max_size) == 3
    assert index.numpy().tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [1, 2], [2, 1]]


def test_softmax_loss_by_hand():
    # A: logits (1, 0), label on the first: -log(e / (e + 1)) = log(1 + e^-1).
    # B: logits (0, 0, 0), labels (0, 1, 1) -> targets (0, 1/2, 1/2): -log(1/3) = log 3.
    # C has no positive: left out.
    expected = (math.log(1 + math.exp(-1)) + math.log(3)) / 2
    assert float(softmax_loss(LABELS, LOGITS, IDS)) == pytest.approx(expected, rel=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(LOGITS)
        loss = softmax_loss(LABELS, LOGITS, IDS)
    grad = tape.gradient(loss, LOGITS).numpy()
    assert grad[2] == 0 and grad[6] == 0  # C contributes nothing
    # d/ds of A's term, halved by the mean over 2 lists: (softmax - target) / 2.
    p = math.exp(1) / (math.exp(1) + 1)
    assert grad[0] == pytest.approx((p - 1) / 2, rel=1e-5)


def test_pairwise_logistic_loss_by_hand():
    # A: one pair (0 over 3): softplus(-(1 - 0)) = log(1 + e^-1).
    # B: pairs (4 over 1), (5 over 1): softplus(0) = log 2 each. C: no pair.
    expected = (math.log(1 + math.exp(-1)) + 2 * math.log(2)) / 3
    assert float(pairwise_logistic_loss(LABELS, LOGITS, IDS)) == pytest.approx(expected, rel=1e-6)


def test_nothing_to_learn_is_zero_not_nan():
    ids = tf.constant([1, 1, 2], tf.int64)
    zeros = tf.constant([0, 0, 0])
    logits = tf.constant([0.3, -1.0, 2.0])
    assert float(softmax_loss(zeros, logits, ids)) == 0.0
    assert float(pairwise_logistic_loss(zeros, logits, ids)) == 0.0
    assert np.isfinite(float(softmax_loss(tf.constant([1, 0, 1]), logits, ids)))


def test_estimators_train_with_list_losses(small_sim_dir, tmp_path):
    import os

    from tfrs_debias.models import EstimatorConfig, build_estimator
    from tfrs_debias.schema import ImpressionSchema
    from tfrs_debias.training import train

    schema = ImpressionSchema.load(os.path.join(small_sim_dir, "schema.json"))
    small = dict(embedding_dim=8, hidden_units=(16,), component_units=(8,), gate_units=(4,))
    config = EstimatorConfig(
        model="position_debiased", task_losses=("softmax", "pairwise_logistic"), **small
    )
    result = train(
        f"{small_sim_dir}/train-*",
        str(tmp_path / "run"),
        config,
        schema,
        epochs=1,
        steps_per_epoch=3,
        verbose=0,
        validate="none",
    )
    assert np.isfinite(result.metrics["final"]["loss"])
    # By hand on one batch: the model's loss is the sum of the two tasks' list losses.
    model = result.model
    batch = {k: tf.constant(v) for k, v in _batch(small_sim_dir, schema).items()}
    logits = model(batch)
    expected = float(softmax_loss(batch["click"], logits[:, 0], batch["request_id"])) + float(
        pairwise_logistic_loss(batch["like"], logits[:, 1], batch["request_id"])
    )
    labels = model.labels(batch)
    got = model.task_loss(labels, logits, compute_metrics=False, list_ids=batch["request_id"])
    assert float(got) == pytest.approx(expected, rel=1e-5)
    no_request = schema.replace(drop=["request_id"])
    with pytest.raises(ValueError, match="need a request_id"):
        build_estimator(no_request, config)
    with pytest.raises(ValueError, match="not in"):
        EstimatorConfig(task_losses=("hinge",))
    with pytest.raises(ValueError, match="pointwise task losses only"):
        EstimatorConfig(task_losses=("softmax",), propensity_weighting="ips")


def _batch(data_dir, schema, rows=256):
    from tfrs_debias.data import make_dataset

    batch = next(iter(make_dataset(f"{data_dir}/train-*", schema, rows, shuffle=False)))
    return {k: v.numpy() for k, v in batch.items()}


def test_loss_names_have_one_meaning():
    from tfrs_debias.losses import LIST_LOSSES
    from tfrs_debias.models.config import TASK_LOSSES

    assert set(TASK_LOSSES) == {"bce", "mse", "weighted_logistic", *LIST_LOSSES}


def test_dual_learning_losses_by_hand():
    from tfrs_debias.losses.ranking_losses import dual_learning_losses

    # One list of three rows (ranks 0, 1, 2), clicks on rows 0 and 2. The ranker is
    # flat (φ = 1/3 each: relevance weights 1); the examination model has ψ ∝ 4, 2, 1,
    # so the inverse-propensity weights relative to the top are 1, 2, 4.
    # rank loss = -(1·log(1/3) + 4·log(1/3)) / 2 = 2.5·log 3 = 2.74653
    # exam loss = -(log(4/7) + log(1/7)) / 2 = 1.25276
    labels = tf.constant([1.0, 0.0, 1.0])
    s = tf.zeros([3])
    e = tf.math.log(tf.constant([4.0, 2.0, 1.0]))
    ids = tf.constant([5, 5, 5])
    ranks = tf.constant([0, 1, 2])
    rank_loss, exam_loss = dual_learning_losses(labels, s, e, ids, ranks)
    assert float(rank_loss) == pytest.approx(2.5 * np.log(3), rel=1e-5)
    assert float(exam_loss) == pytest.approx(-(np.log(4 / 7) + np.log(1 / 7)) / 2, rel=1e-5)
    # Weights clipped at 3: (1 + 3)·log 3 / 2.
    clipped, _ = dual_learning_losses(labels, s, e, ids, ranks, max_weight=3.0)
    assert float(clipped) == pytest.approx(2 * np.log(3), rel=1e-5)
    # Rows shuffled and interleaved with a list without clicks (no contribution): the
    # top is found by rank, not by row order.
    order = [2, 0, 1]
    mixed = dual_learning_losses(
        tf.concat([tf.gather(labels, order), [0.0, 0.0]], 0),
        tf.concat([tf.gather(s, order), [3.0, -1.0]], 0),
        tf.concat([tf.gather(e, order), [0.0, 2.0]], 0),
        tf.constant([5, 5, 5, 8, 8]),
        tf.concat([tf.gather(ranks, order), [0, 1]], 0),
    )
    assert float(mixed[0]) == pytest.approx(float(rank_loss), rel=1e-5)
    assert float(mixed[1]) == pytest.approx(float(exam_loss), rel=1e-5)
    # Each loss trains only its own model.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([s, e])
        rank_loss, exam_loss = dual_learning_losses(labels, s, e, ids, ranks)
    assert tape.gradient(rank_loss, e) is None or not np.any(tape.gradient(rank_loss, e))
    assert tape.gradient(exam_loss, s) is None or not np.any(tape.gradient(exam_loss, s))
    assert np.any(tape.gradient(rank_loss, s)) and np.any(tape.gradient(exam_loss, e))
