import os

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.data import write_examples
from tfrs_debias.evaluation import (
    Evaluator,
    Scorer,
)
from tfrs_debias.schema import Feature, ImpressionSchema


def test_snips_weighted_logged_metrics(tmp_path):
    schema = ImpressionSchema.default(tasks=("click",), bias=False).replace(
        add=[Feature("prop", "float32", "propensity")]
    )
    n = 400
    rng = np.random.default_rng(0)
    cols = {
        "user_id": np.arange(n),
        "item_id": np.arange(n),
        "request_id": np.arange(n),
        "click": rng.integers(0, 2, n),
        "prop": rng.uniform(0.1, 1.0, n),
    }
    write_examples(cols, schema, str(tmp_path), "test", progress=False)
    p_served = 1 / (1 + np.exp(-(cols["item_id"] % 7 - 3.0)))

    def served(f):
        return tf.sigmoid(tf.cast(f["item_id"] % 7, tf.float32) - 3.0)[:, None].numpy()

    scorer = Scorer(("click",), schema, served, lambda f: np.full((len(f["item_id"]), 1), 0.3))
    out = Evaluator().logged(scorer, str(tmp_path / "test-*"), schema, batch_size=128)
    w = 1 / cols["prop"].astype(np.float32)
    y = cols["click"]
    bce = -(y * np.log(p_served) + (1 - y) * np.log(1 - p_served))
    m = out["tasks"]["click"]
    assert m["snips_logloss"] == pytest.approx((w * bce).sum() / w.sum(), rel=1e-4)
    assert m["logloss"] == pytest.approx(
        -(y * np.log(0.3) + (1 - y) * np.log(0.7)).mean(), rel=1e-4
    )
    assert m["auc"] == pytest.approx(0.5, abs=1e-6)  # constant full probabilities
    # The served AUC ranks by the served probabilities: pairs (pos, neg), ties count 1/2.
    pos, neg = p_served[y == 1], p_served[y == 0]
    expected = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert m["served_auc"] == pytest.approx(expected, abs=2e-3)
    assert out["rows"] == n


def _constant_scorer(schema):
    def const(f):
        return np.full((len(f["item_id"]), 1), 0.3, np.float32)

    return Scorer(("click",), schema, const, const)


@pytest.mark.parametrize("bad", ["label", "propensity", "missing", "truncated"])
def test_logged_metrics_check_every_record(tmp_path, bad):
    """A bad record at 11,000 (past any sample) stops evaluation with its file and
    index, instead of rc 0 with label 2, NaN in metrics.json or a traceback."""
    schema = ImpressionSchema.default(tasks=("click",), bias=False).replace(
        add=[Feature("prop", "float32", "propensity")]
    )
    n = 12_000
    cols = {
        "user_id": np.arange(n) % 50,
        "item_id": np.arange(n) % 70,
        "request_id": np.arange(n),
        "click": np.arange(n) % 2,
        "prop": np.full(n, 0.5),
    }
    [path] = write_examples(cols, schema, str(tmp_path), "test", progress=False)
    rows = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    example = tf.train.Example.FromString(rows[11_000])
    expected = {
        "label": "label 'click' must be 0 or 1, got 2",
        "propensity": "feature 'prop' is NaN or inf",
        "missing": "missing feature 'click'",
        "truncated": "corrupted TFRecord data from here on",
    }[bad]
    if bad == "label":
        example.features.feature["click"].int64_list.value[:] = [2]
    elif bad == "propensity":
        example.features.feature["prop"].float_list.value[:] = [float("nan")]
    elif bad == "missing":
        del example.features.feature["click"]
    rows[11_000] = example.SerializeToString()
    if bad == "truncated":  # plain TFRecord cut in the middle of record 11,000's framing
        os.remove(path)
        path = str(tmp_path / "test-00000-of-00001.tfrecord")
        with tf.io.TFRecordWriter(path) as w:
            for r in rows:
                w.write(r)
        with open(path, "r+b") as fh:
            fh.truncate(sum(len(r) + 16 for r in rows[:11_000]) + 30)
    else:
        with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as w:
            for r in rows:
                w.write(r)
    from tfrs_debias.data import InvalidDataError

    with pytest.raises(InvalidDataError) as info:
        Evaluator().logged(_constant_scorer(schema), path, schema)
    assert f"{path}: record 11000: {expected}" in str(info.value)


def test_logged_metrics_refuse_empty_logs(tmp_path):
    schema = ImpressionSchema.default(tasks=("click",), bias=False)
    path = str(tmp_path / "test-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path):
        pass
    with pytest.raises(ValueError, match="no records to evaluate"):
        Evaluator().logged(_constant_scorer(schema), path, schema)


def test_corrupt_truth_file_is_named(tmp_path):
    from tfrs_debias.data import GroundTruth

    truth = GroundTruth(
        users=np.arange(2),
        candidates=np.arange(6).reshape(2, 3),
        relevance={"click": np.zeros((2, 3))},
        user_train_impressions=np.zeros(2),
        candidate_train_impressions=np.zeros((2, 3)),
    )
    truth.save(str(tmp_path))
    assert GroundTruth.load(str(tmp_path)).candidates.shape == (2, 3)
    npz = tmp_path / "truth.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"truth.npz: not a readable truth file"):
        GroundTruth.load(str(tmp_path))
