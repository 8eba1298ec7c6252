import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.cli import main
from tfrs_debias.data import write_examples
from tfrs_debias.evaluation import (
    Evaluator,
    Scorer,
    gap_closed,
    item_bucket,
    summary_rows,
    user_bucket,
    write_report,
)
from tfrs_debias.metrics import dcg_at_k, ndcg_at_k
from tfrs_debias.schema import Feature, ImpressionSchema


def test_ndcg_by_hand():
    scores = np.array([[3.0, 2.0, 1.0]])
    rel = np.array([[1.0, 0.0, 0.5]])
    # DCG = 1/log2(2) + 0/log2(3) + 0.5/log2(4) = 1.25 ; ideal = 1 + 0.5/log2(3)
    np.testing.assert_allclose(dcg_at_k(scores, rel, 3), [1.25])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 3), [1.25 / (1 + 0.5 / math.log2(3))])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 1), [1.0])
    # reversed ranking: 0.5 + 0/log2(3) + 1/log2(4)
    np.testing.assert_allclose(ndcg_at_k(-scores, rel, 3), [1.0 / (1 + 0.5 / math.log2(3))])
    # a masked (padding) candidate is never ranked
    mask = np.array([[False, True, True]])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 2, mask), [0.5 / math.log2(3) / 0.5])
    assert np.isnan(ndcg_at_k(scores, np.zeros((1, 3)), 3)[0])


def test_buckets_and_gap_by_hand():
    assert user_bucket(np.array([0, 10, 11, 100, 101])).tolist() == [
        "new",
        "new",
        "casual",
        "casual",
        "power",
    ]
    counts = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 100]])
    buckets = item_bucket(counts, (0.5, 0.9))  # quantiles 5.5 and 18.1
    assert buckets.tolist() == [["tail"] * 5 + ["torso"] * 4 + ["head"]]
    assert gap_closed(0.7, 0.5, 0.75) == pytest.approx(0.8)
    assert gap_closed(0.7, 0.5, 0.5) is None


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


def test_report_files(tmp_path):
    res = {
        "ranking": {
            "ndcg": {"click": {"@10": 0.6}},
            "ndcg_by_user_bucket": {"click": {b: {"@10": 0.5} for b in ("new", "casual", "power")}},
            "ndcg_by_item_bucket": {"click": {b: {"@10": 0.4} for b in ("head", "torso", "tail")}},
            "head_share_top10": 0.3,
            "head_share_top10_truth": 0.1,
        },
        "examination": {
            "devices": ["phone"],
            "learned": [[1.0, 0.6]],
            "true": [[1.0, 0.5]],
            "relative_error": [[0.0, 0.2]],
            "max_error": 0.2,
            "mean_error": 0.1,
        },
    }

    def with_users(ranking, values):
        # Per-user NDCG: every user gains the same over naive, so each bootstrap sample
        # gives the same share: (0.6 - 0.5) / (0.8 - 0.5) = 1/3, interval [1/3, 1/3].
        per_user = {"click": {"@10": values}}
        return {**ranking, "ndcg": {"click": {"@10": sum(values) / 2}}, "ndcg_per_user": per_user}

    results = {
        "naive": {"ranking": with_users(res["ranking"], [0.4, 0.6])},
        "pd": {**res, "ranking": with_users(res["ranking"], [0.5, 0.7])},
        "full_information": {"ranking": with_users(res["ranking"], [0.7, 0.9])},
    }
    paths = write_report(results, str(tmp_path))
    rows = summary_rows(results)
    assert [round(r["gap_closed"], 4) for r in rows] == [0.0, round(0.1 / 0.3, 4), 1.0]
    text = Path(paths["report"]).read_text()
    assert rows[1]["gap_low"] == pytest.approx(1 / 3) and rows[1]["gap_high"] == pytest.approx(
        1 / 3
    )
    assert "| pd | 0.6000 | 33% [33%, 33%] |" in text and "| phone | 0% | 20% |" in text
    for key in ("examination_plot", "buckets_plot"):
        assert Path(paths[key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(Path(paths["metrics"]).read_text())["summary"][1]["model"] == "pd"


def test_demo_end_to_end(tmp_path, capsys):
    out, models = str(tmp_path / "demo"), str(tmp_path / "saved_models")
    assert (
        main(
            ["demo", "--small", "--quiet", "--out", out, "--saved-models", models, "--epochs", "2"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "| naive |" in text and "| position_debiased |" in text and "top 5 for user" in text
    for name in ("naive", "position_debiased", "full_information"):
        assert os.path.exists(os.path.join(models, f"demo_{name}", "1", "saved_model.pb"))
    report = os.path.join(out, "report")
    for f in (
        "report.md",
        "metrics.json",
        "examination.png",
        "ndcg_buckets.png",
        "fairness.png",
        "tradeoff.png",
    ):
        assert os.path.exists(os.path.join(report, f)), f
    text = Path(report, "report.md").read_text()
    assert "| position_debiased | user_segment |" in text and "ANOVA p" in text
    assert "## Diversity trade-off" in text and "| position_debiased | 0.2 |" in text
    evaluated = json.loads(Path(report, "metrics.json").read_text())["models"]
    trade = evaluated["position_debiased"]["tradeoff"]
    # λ = 0.2 gives more diverse lists than ranking by score alone (λ = 1).
    assert trade["intra_list_similarity"][-1] < trade["intra_list_similarity"][0]
    test = evaluated["position_debiased"]["fairness"]["user_groups"]["user_segment"]["error"]
    assert 0 <= test["anova_p"] <= 1 and len(test["groups"]) >= 2
    summary = {
        r["model"]: r for r in json.loads(Path(report, "metrics.json").read_text())["summary"]
    }
    ceiling = summary["full_information"]
    # The ceiling is 100% and naive 0% of the gap whenever the gap is measurable.
    assert ceiling["gap_closed"] is None or (
        ceiling["gap_closed"] == pytest.approx(1) and summary["naive"]["gap_closed"] == 0
    )
    assert summary["naive"]["exam_mean_error"] is None  # no bias part, no curve
    assert (
        summary["position_debiased"]["exam_mean_error"] is not None
    )  # curve recovery: test_quality
    # evaluate on logs only (no truth): AUC/log-loss of the biased signature
    os.remove(os.path.join(out, "data", "truth.npz"))
    assert (
        main(
            [
                "evaluate",
                "--model",
                os.path.join(models, "demo_naive"),
                "--data",
                os.path.join(out, "data"),
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 0
    )
    assert "demo_naive click: logged AUC" in capsys.readouterr().out
    # Without a truth: click-model baselines beside the model; no curve for a model
    # without a bias part.
    clicks = json.loads(Path(tmp_path, "r2", "metrics.json").read_text())["models"]["demo_naive"]
    clicks = clicks["click_models"]
    assert set(clicks["perplexity"]) == {"pbm", "rank_ctr", "doc_ctr", "model"}
    assert all(1 <= v < 2 for v in clicks["perplexity"].values())
    assert clicks["examination"] is None


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
