"""A binary task beside a real-valued one (watch time): MSE and YouTube's weighted
logistic by hand, and a run that trains, exports (the served outputs include the
regression output) and selects with value weights over both."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.data.io.log_dataset import write_log_dataset
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import Feature, ImpressionSchema
from tfrs_debias.serving import TopItemSelector, export_saved_model
from tfrs_debias.training import train

SMALL = dict(embedding_dim=8, hidden_units=(16,))


@pytest.fixture(scope="module")
def watch_dir(small_sim_dir, tmp_path_factory):
    """The small simulator's logs with ``like`` replaced by a watch time: 0 without a
    click, else 1 + 4 · like + noise (minutes)."""
    schema = ImpressionSchema.load(os.path.join(small_sim_dir, "schema.json"))
    watch = schema.replace(drop=["like"], add=[Feature("watch_time", "float32", "label")])
    rng = np.random.default_rng(0)
    splits = {}
    for split in ("train", "valid", "test"):
        cols = read_columns(os.path.join(small_sim_dir, f"{split}-*"), schema)
        minutes = cols["click"] * (
            1.0 + 4.0 * cols["like"] + rng.exponential(0.5, len(cols["click"]))
        )
        cols.pop("like")
        cols["watch_time"] = minutes.astype(np.float32)
        splits[split] = cols
    out = str(tmp_path_factory.mktemp("watch"))
    write_log_dataset(out, watch, splits, None, progress=False)
    return out, watch


def test_regression_losses_by_hand(watch_dir):
    _, schema = watch_dir
    mse = build_estimator(schema, EstimatorConfig(model="multi_task", **SMALL))
    assert mse.config.task_losses == ("bce", "mse")  # the default for a float label
    labels = tf.constant([[1.0, 3.0], [0.0, 0.0]])
    logits = tf.constant([[0.0, 1.0], [0.0, 0.5]])
    # click: BCE ln 2 twice; watch: ((3 − 1)² + (0 − 0.5)²) / 2 = 2.125
    expected = math.log(2) + 2.125
    assert float(mse.task_loss(labels, logits, compute_metrics=False)) == pytest.approx(expected)
    weighted = build_estimator(
        schema,
        EstimatorConfig(model="multi_task", task_losses=("bce", "weighted_logistic"), **SMALL),
    )
    # watch, weighted logistic: row 1 a positive of weight 3 (−log σ(1)), row 2 a
    # negative of weight 1 (−log(1 − σ(0.5))); mean over the 2 rows.
    watch = (3 * math.log1p(math.exp(-1.0)) + math.log1p(math.exp(0.5))) / 2
    assert float(weighted.task_loss(labels, logits, compute_metrics=False)) == pytest.approx(
        math.log(2) + watch, rel=1e-5
    )
    # Outputs: a probability, the logit (mse) or exp(logit) (weighted logistic).
    np.testing.assert_allclose(mse.task_values(logits).numpy(), [[0.5, 1.0], [0.5, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(
        weighted.task_values(logits).numpy()[:, 1], np.exp([1.0, 0.5]), rtol=1e-6
    )
    with pytest.raises(ValueError, match="real-valued labels"):
        build_estimator(schema, EstimatorConfig(model="multi_task", task_losses=("bce", "bce")))
    with pytest.raises(ValueError, match="are real-valued"):
        build_estimator(schema, EstimatorConfig(model="anchored_factorized"))


def test_binary_and_watch_time_train_export_and_select(watch_dir, tmp_path):
    data, schema = watch_dir
    cols = read_columns(os.path.join(data, "test-*"), schema)
    broken = {**cols, "watch_time": cols["watch_time"].copy()}
    broken["watch_time"][5] = np.nan
    with pytest.raises(ValueError, match="'watch_time' is NaN or inf: row 5"):
        write_log_dataset(str(tmp_path / "bad"), schema, {"test": broken}, None, progress=False)
    run = train(
        os.path.join(data, "train-*"),
        str(tmp_path / "run"),
        EstimatorConfig(
            model="position_debiased",
            task_losses=("bce", "weighted_logistic"),
            value_weights=(1.0, 0.1),
            **SMALL,
        ),
        schema,
        epochs=3,
        verbose=0,
        validate="none",
    )
    assert run.model.bias_combines == ("multiply", "add")
    assert 0.5 < run.history["val_click_auc"][-1] < 1
    path = export_saved_model(run.model, str(tmp_path / "models" / "watch"))
    sig = tf.saved_model.load(path).signatures["serving_default"]
    batch = {k: tf.constant(v[:64]) for k, v in cols.items()}
    inputs = set(sig.structured_input_signature[1])
    out = sig(**{k: v for k, v in batch.items() if k in inputs})
    expected = run.model.debiased_probabilities(batch).numpy()
    np.testing.assert_allclose(out["watch_time"].numpy(), expected[:, 1], rtol=1e-5)
    # Expected minutes, not a probability: the mean is near the data's mean watch time.
    mean_watch = float(np.mean(cols["watch_time"]))
    assert 0.3 * mean_watch < float(np.mean(out["watch_time"])) < 3 * mean_watch
    assert float(np.max(out["watch_time"])) > 1.0
    np.testing.assert_allclose(
        out["score"].numpy(), expected[:, 0] + 0.1 * expected[:, 1], rtol=1e-5
    )
    selector = TopItemSelector.from_saved_model(path)
    user = {"user_id": int(cols["user_id"][0]), "user_segment": int(cols["user_segment"][0])}
    cands = {"item_id": cols["item_id"][:40], "item_genre": cols["item_genre"][:40]}
    picks = selector.select(user, cands, k=5, value_weights={"click": 1.0, "watch_time": 0.5})
    for p in picks:
        assert p.score == pytest.approx(
            p.probabilities["click"] + 0.5 * p.probabilities["watch_time"], rel=1e-5
        )
    scores = [p.score for p in picks]
    assert scores == sorted(scores, reverse=True)
