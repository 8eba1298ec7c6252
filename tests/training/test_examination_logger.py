import pytest
import tensorflow as tf

from tests.training.support import SMALL, load_schema
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import train


def test_learned_examination_curve_is_logged_each_epoch(small_sim_dir, tmp_path):
    schema = load_schema(small_sim_dir)
    out = tmp_path / "run"
    result = train(
        f"{small_sim_dir}/train-*",
        str(out),
        EstimatorConfig(model="position_debiased", **SMALL),
        schema,
        epochs=2,
        steps_per_epoch=3,
        verbose=0,
        validate="none",
    )
    curves = result.metrics["examination_curve"]
    position = schema["position"]
    num_ranks = position.num_values or max(result.model.vocabularies["position"]) + 1
    assert len(curves) == 3  # the three most frequent devices
    for curve in curves.values():
        assert len(curve) == min(num_ranks, 20) and curve[0] == pytest.approx(1.0)
    events = list((out / "logs" / "examination").glob("events.out.tfevents.*"))
    assert events
    tags = {
        v.tag for e in tf.compat.v1.train.summary_iterator(str(events[0])) for v in e.summary.value
    }
    assert f"examination/{next(iter(curves))}/rank_01" in tags
    assert "examination/curves" in tags  # the plot, in TensorBoard's Images tab
    # Slate metrics on validation data: served and full-score NDCG@10 and MRR, in the
    # history (never in the training logs, where they are not computed) and in
    # TensorBoard's validation events.
    for name in ("ndcg_10", "mrr", "ndcg_10_full", "mrr_full"):
        assert 0 < result.history[f"val_{name}"][-1] <= 1, name
        assert name not in result.history
    validation = list((out / "logs" / "validation").glob("events.out.tfevents.*"))
    tags = {
        v.tag
        for e in tf.compat.v1.train.summary_iterator(str(validation[0]))
        for v in e.summary.value
    }
    assert {"epoch_ndcg_10", "epoch_mrr"} <= tags
    train_events = list((out / "logs" / "train").glob("events.out.tfevents.*"))
    tags = {
        v.tag
        for e in tf.compat.v1.train.summary_iterator(str(train_events[0]))
        for v in e.summary.value
    }
    expected = {"epoch_examples_per_sec", "epoch_learning_rate", "epoch_click_loss"}
    assert expected | {"epoch_like_loss", "epoch_aux_loss"} <= tags
    # The cosine over 2 x 3 steps: the last step (t = 5) ran at 1e-3 (1 + cos(5π/6)) / 2.
    assert result.history["learning_rate"][-1] == pytest.approx(6.699e-5, rel=1e-3)
    # The folder has a truth: the served NDCG@10 against it, every epoch.
    assert "epoch_truth_ndcg_10" in tags
    assert len(result.history["truth_ndcg_10"]) == 2
    assert 0.2 < result.history["truth_ndcg_10"][-1] <= 1
    # A model without a bias part logs no curve.
    plain = train(
        f"{small_sim_dir}/train-*",
        str(tmp_path / "plain"),
        EstimatorConfig(model="multi_task", **SMALL),
        schema,
        epochs=1,
        steps_per_epoch=2,
        verbose=0,
        validate="none",
    )
    assert plain.metrics["examination_curve"] is None
