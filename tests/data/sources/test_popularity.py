import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.cli import main
from tfrs_debias.data import GroundTruth, make_dataset, validate_files
from tfrs_debias.data.sources.popularity import (
    PopularityFactors,
    add_popularity_features,
    power_mean_factors,
)
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import Feature, ImpressionSchema
from tfrs_debias.serving import TopItemSelector, export_saved_model
from tfrs_debias.training import train

SMALL = dict(embedding_dim=8, hidden_units=(16,), component_units=(8,), gate_units=(4,))


def test_power_mean_factors_by_hand():
    f = power_mean_factors(np.array([1, 2, 3]), powers=(1, 2))
    np.testing.assert_allclose(f[:, 0], [0.5, 1.0, 1.5])  # mean 2
    norm2 = np.sqrt((1 + 4 + 9) / 3)
    np.testing.assert_allclose(f[:, 1], np.array([1, 2, 3]) / norm2)
    assert power_mean_factors(np.zeros(3)).sum() == 0


def test_windowed_factors_by_hand():
    schema = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False).replace(
        add=[Feature("ts", "int64", "user_feature")]
    )
    cols = {
        "user_id": np.array([1, 1, 2, 2, 2]),
        "item_id": np.array([7, 7, 8, 7, 8]),
        "click": np.array([1, 1, 1, 1, 0]),
        "ts": np.array([0, 10, 20, 100, 110]),
    }
    f = PopularityFactors.from_columns(cols, schema, timestamp="ts", window_seconds=100)
    # window 0: item 7 twice, item 8 once -> p1 factors 2/1.5, 1/1.5 ; window 1: item 7 alone
    got = f.lookup("item", np.array([7, 8, 7, 9]), np.array([0, 0, 1, 1]))[:, 0]
    np.testing.assert_allclose(got, [2 / 1.5, 1 / 1.5, 1.0, 0.0])


@pytest.fixture(scope="module")
def pop_dir(small_sim_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pop") / "data")
    assert main(["popularity", "--data", small_sim_dir, "--out", out, "--no-progress"]) == 0
    return out


def test_popularity_dataset(pop_dir, small_sim_dir):
    schema = ImpressionSchema.load(os.path.join(pop_dir, "schema.json"))
    names = [f.name for f in schema.popularity_features]
    assert names == [f"item_pop_p{p}" for p in range(1, 5)] + [
        f"user_act_p{p}" for p in range(1, 5)
    ]
    assert "item_pop_p1" not in schema.serving_specs()
    assert validate_files(os.path.join(pop_dir, "train-*"), schema).ok
    batch = next(iter(make_dataset(os.path.join(pop_dir, "train-*"), schema, 50000, shuffle=False)))
    items, clicks = batch["item_id"].numpy(), batch["click"].numpy()
    counts = np.bincount(items[clicks == 1], minlength=items.max() + 1)
    seen = counts[counts > 0]
    expected = counts[items] / seen.mean()  # p = 1 over items with an interaction
    np.testing.assert_allclose(batch["item_pop_p1"].numpy(), expected, rtol=1e-5)
    truth = GroundTruth.load(pop_dir)
    assert truth.item_features["item_pop_p2"].shape == truth.candidates.shape
    with pytest.raises(ValueError, match="already has popularity features"):
        add_popularity_features(pop_dir, pop_dir + "_again")


def test_popularity_intervention(pop_dir):
    schema = ImpressionSchema.load(os.path.join(pop_dir, "schema.json"))
    batch = next(iter(make_dataset(os.path.join(pop_dir, "train-*"), schema, 256, shuffle=False)))
    moved = dict(batch)
    for f in schema.popularity_features:
        moved[f.name] = batch[f.name] * 3.0 + 1.0
    full = build_estimator(schema, EstimatorConfig(model="factorized", **SMALL))
    # popularity is read in training ...
    assert not np.array_equal(full(batch).numpy(), full(moved).numpy())
    # ... but the served score intervenes: do(F = neutral)
    np.testing.assert_array_equal(
        full.debiased_logits(batch).numpy(), full.debiased_logits(moved).numpy()
    )
    keep = build_estimator(
        schema, EstimatorConfig(model="position_debiased", popularity_keep=0.5, **SMALL)
    )
    keep(batch)
    r = keep.relevance_logits(batch)
    expected = r + 0.5 * (
        keep.popularity_logits(batch) - keep.popularity_logits(batch, neutral=True)
    )
    np.testing.assert_allclose(keep.debiased_logits(batch).numpy(), expected.numpy(), rtol=1e-6)


def test_export_reads_popularity_only_when_kept(pop_dir, tmp_path):
    schema = ImpressionSchema.load(os.path.join(pop_dir, "schema.json"))
    for keep in (0.0, 0.5):
        run = train(
            os.path.join(pop_dir, "train-*"),
            str(tmp_path / f"run{keep}"),
            EstimatorConfig(model="position_debiased", popularity_keep=keep, **SMALL),
            schema,
            epochs=1,
            steps_per_epoch=3,
            verbose=0,
        )
        path = export_saved_model(run.model, str(tmp_path / f"m{keep}"))
        sig = tf.saved_model.load(path).signatures["serving_default"]
        inputs = set(sig.structured_input_signature[1])
        assert ("item_pop_p1" in inputs) == (keep > 0)
        assert "position" not in inputs
        res = Evaluator(GroundTruth.load(pop_dir), ks=(10,)).ranking(Scorer.from_saved_model(path))
        assert 0 < res["ndcg"]["click"]["@10"] <= 1
        # The selector feeds what the export serves (popularity factors too when kept),
        # and equals serving_default on the same inputs.
        truth = GroundTruth.load(pop_dir)
        selector = TopItemSelector.from_saved_model(path)
        assert ("item_pop_p1" in {f.name for f in selector.served_features}) == (keep > 0)
        user = {"user_id": int(truth.users[0])}
        user.update({n: v[0] for n, v in truth.user_features.items()})
        cands = {"item_id": truth.candidates[0]}
        cands.update({n: v[0] for n, v in truth.item_features.items()})
        picks = selector.select(user, cands, k=3)
        assert len(picks) == 3
        feats = {n: tf.constant(np.full(len(cands["item_id"]), v)) for n, v in user.items()}
        feats.update({n: tf.constant(v) for n, v in cands.items()})
        served = sig(**{k: v for k, v in feats.items() if k in inputs})["score"].numpy()
        assert picks[0].score == pytest.approx(float(served.max()), rel=1e-5)


def test_popularity_bad_record_leaves_nothing_half_written(small_sim_dir, tmp_path, capsys):
    """An out-of-range position in the last split read used to leave test and train
    written without schema.json; now the command names the record and out stays as it was."""
    data = tmp_path / "data"
    data.mkdir()
    schema = ImpressionSchema.load(os.path.join(small_sim_dir, "schema.json"))
    for name in os.listdir(small_sim_dir):
        if name.startswith(("train-", "test-", "valid-")) or name == "schema.json":
            shutil.copy(os.path.join(small_sim_dir, name), data / name)
    valid = sorted(p for p in os.listdir(data) if p.startswith("valid-"))[0]
    rows = [r.numpy() for r in tf.data.TFRecordDataset(str(data / valid))]
    bad = tf.train.Example.FromString(rows[5])
    bad.features.feature["position"].int64_list.value[:] = [schema["position"].num_values or 99]
    rows[5] = bad.SerializeToString()
    with tf.io.TFRecordWriter(str(data / valid)) as w:
        for r in rows:
            w.write(r)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc = main(["popularity", "--data", str(data), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"{data / valid}: record 5: 'position' out of range" in err
    assert sorted(os.listdir(out)) == ["notes.txt"]  # nothing written, nothing removed
    # Empty input is an error, not a KeyError traceback.
    empty = tmp_path / "empty"
    empty.mkdir()
    schema.save(str(empty / "schema.json"))
    with tf.io.TFRecordWriter(str(empty / "train-00000-of-00001.tfrecord")):
        pass
    rc = main(["popularity", "--data", str(empty), "--out", str(tmp_path / "o2"), "--no-progress"])
    assert rc == 2 and "the train split has no records" in capsys.readouterr().err
    # An existing dataset: the message names the flag, and --overwrite replaces it.
    rc = main(["popularity", "--data", small_sim_dir, "--out", str(out), "--no-progress"])
    assert rc == 0
    rc = main(["popularity", "--data", small_sim_dir, "--out", str(out), "--no-progress"])
    assert rc == 2 and "pass --overwrite" in capsys.readouterr().err
