"""`ImpressionSimulator`: the examination formula, slates, determinism, the twins, the
truth, and the presets."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tfrs_debias.cli import main
from tfrs_debias.data import (
    ExaminationModel,
    GroundTruth,
    ImpressionSimulator,
    SimulatorConfig,
)
from tfrs_debias.data.sources.click_model import draw_labels, gumbel_top_k, rank_slates
from tfrs_debias.schema import ImpressionSchema


@pytest.mark.parametrize("preset", ["search"])
def test_search_preset_has_query_pools(preset):
    sim = ImpressionSimulator(SimulatorConfig.search(num_requests=200))
    splits, truth = sim.simulate(progress=False)
    train = splits["train"]
    # Each query shows only documents of its own pool of 50, the truth's candidates.
    for q in np.unique(train["user_id"]):
        shown = np.unique(train["item_id"][train["user_id"] == q])
        assert len(shown) <= 50
        if q in truth.users:  # the truth's candidates are the query's pool
            pool = truth.candidates[list(truth.users).index(q)]
            assert set(shown.tolist()) <= set(pool.tolist())
    assert truth.candidates.shape[1] == 50 and tuple(truth.devices) == ("web",)
    # The full-information twin has the same slates and more clicks (every slot examined).
    full = splits["full_train"]
    np.testing.assert_array_equal(full["item_id"], train["item_id"])
    assert full["click"].mean() > train["click"].mean()


@pytest.fixture(scope="module")
def world():
    sim = ImpressionSimulator(SimulatorConfig.small(seed=11, num_requests=20000))
    splits, truth = sim.simulate(progress=False)
    return sim, splits, truth


def _ctr_by_position(cols, device=None):
    rows = np.ones(len(cols["position"]), bool) if device is None else cols["device"] == device
    clicks = np.bincount(cols["position"][rows], weights=cols["click"][rows], minlength=10)
    return clicks / np.bincount(cols["position"][rows], minlength=10)


def test_examination_curve_formula():
    exam = ExaminationModel(
        devices=("a", "b"), device_probs=(0.5, 0.5), decay=(1.0, 0.5), top=(1.0, 0.8)
    )
    np.testing.assert_allclose(
        exam.curves(3), [[1, 1 / 2, 1 / 3], [0.8, 0.8 / 2**0.5, 0.8 / 3**0.5]]
    )
    with pytest.raises(ValueError, match="sum to 1"):
        ExaminationModel(device_probs=(0.5, 0.2, 0.2))


def test_slate_helpers():
    rng = np.random.default_rng(0)
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    np.testing.assert_array_equal(rank_slates(scores, 3), [[1, 3, 2]])
    # Gumbel-top-k draws without replacement and follows the weights.
    draws = gumbel_top_k(np.log(np.array([[8.0, 1.0, 1.0]]).repeat(4000, 0)), 1, rng)[:, 0]
    assert abs(np.mean(draws == 0) - 0.8) < 0.03
    two = gumbel_top_k(np.zeros((500, 5)), 2, rng)
    assert (two[:, 0] != two[:, 1]).all()
    # Oracle twin: same expected clicks, no position effect.
    exam = np.tile([[1.0, 0.5, 0.25, 0.25]], (20000, 1))
    labels = draw_labels(exam, np.full(exam.shape, 0.5), np.full(exam.shape, 0.5), rng)
    np.testing.assert_allclose(labels["click"].mean(0), [0.5, 0.25, 0.125, 0.125], atol=0.015)
    np.testing.assert_allclose(labels["oracle_click"].mean(0), 0.25, atol=0.015)
    assert (labels["like"] <= labels["click"]).all()
    # Examined: at rate e, every click among them, P(click | examined) = f = 0.5.
    seen = labels["examined"]
    np.testing.assert_allclose(seen.mean(0), [1.0, 0.5, 0.25, 0.25], atol=0.015)
    assert not (labels["click"].astype(bool) & ~seen).any()
    np.testing.assert_allclose(labels["click"][seen].mean(), 0.5, atol=0.01)


def test_deterministic_given_seed():
    a, ta = ImpressionSimulator(SimulatorConfig.small(seed=5)).simulate(progress=False)
    b, tb = ImpressionSimulator(SimulatorConfig.small(seed=5)).simulate(progress=False)
    c, _ = ImpressionSimulator(SimulatorConfig.small(seed=6)).simulate(progress=False)
    for split in a:
        for key in a[split]:
            np.testing.assert_array_equal(a[split][key], b[split][key])
    np.testing.assert_array_equal(ta.candidates, tb.candidates)
    assert not np.array_equal(a["train"]["click"], c["train"]["click"])


def test_click_rate_falls_with_position_per_device(world):
    sim, splits, _ = world
    train = splits["train"]
    curves = {}
    for device in sim.config.examination.devices:
        ctr = _ctr_by_position(train, device)
        assert ctr[0] > ctr[3] > ctr[9], (device, ctr)
        curves[device] = ctr[9] / ctr[0]
    # phones decay fastest, TVs slowest (decay 1.0 > 0.6 > 0.3)
    assert curves["phone"] < curves["desktop"] < curves["tv"]


def test_oracle_twin_has_same_volume_and_no_position_effect(world):
    _, splits, _ = world
    naive, oracle = splits["train"], splits["oracle_train"]
    for key in ("request_id", "user_id", "item_id", "position", "device"):
        np.testing.assert_array_equal(naive[key], oracle[key])
    assert abs(oracle["click"].mean() / naive["click"].mean() - 1) < 0.05
    n_ctr, o_ctr = _ctr_by_position(naive), _ctr_by_position(oracle)
    # In the oracle, position only reflects the policy's relevance ordering.
    assert o_ctr[0] / o_ctr[9] < 0.6 * (n_ctr[0] / n_ctr[9])


def test_examined_twin_is_the_logs_examined_impressions(world):
    sim, splits, truth = world
    logs, examined = splits["train"], splits["examined_train"]
    # Every logged click was examined, so the twin keeps all of them ...
    assert examined["click"].sum() == logs["click"].sum() > 0
    assert examined["like"].sum() == logs["like"].sum()
    # ... and drops impressions: at the bottom rank more than at the top.
    kept = np.bincount(examined["position"], minlength=10) / np.bincount(logs["position"])
    assert kept[0] > kept[9] and kept.max() <= 1
    # Its rows are log rows (same request, position, item).
    log_rows = set(zip(logs["request_id"], logs["position"], logs["item_id"], strict=True))
    assert (
        set(zip(examined["request_id"], examined["position"], examined["item_id"], strict=True))
        <= log_rows
    )
    # Kept at the examination rate: e(p, d) = top_d / (1 + p)^decay_d.
    curves = dict(zip(truth.devices, truth.examination, strict=True))
    for device in truth.devices:
        n_logs = np.bincount(logs["position"][logs["device"] == device], minlength=10)
        n_kept = np.bincount(examined["position"][examined["device"] == device], minlength=10)
        np.testing.assert_allclose(n_kept / n_logs, curves[device][:10], atol=0.03)


def test_heavy_tails_and_confounding(world):
    sim, splits, truth = world
    train = splits["train"]
    per_user = np.sort(np.bincount(train["user_id"]))[::-1]
    assert per_user[: len(per_user) // 20].sum() > 0.25 * per_user.sum()  # top 5% users
    per_item = np.sort(np.bincount(train["item_id"]))[::-1]
    assert per_item[: len(per_item) // 10].sum() > 0.4 * per_item.sum()  # top 10% items
    # The logging policy puts more relevant items higher.
    rel = sim.relevance(train["user_id"], train["item_id"][:, None])["click"][:, 0]
    by_pos = np.bincount(train["position"], weights=rel) / np.bincount(train["position"])
    assert by_pos[0] > by_pos[9] + 0.1


def test_truth_contents(world):
    sim, _, truth = world
    c = sim.config
    assert truth.candidates.shape == (c.num_test_users, c.truth_candidates)
    assert set(truth.relevance) == {"click", "like"}
    assert (truth.relevance["like"] <= truth.relevance["click"]).all()
    assert ((truth.relevance["click"] > 0) & (truth.relevance["click"] < 1)).all()
    np.testing.assert_allclose(truth.examination, c.examination.curves(c.slate_length))
    assert (truth.user_train_impressions == 0).any()  # new users are in the truth
    np.testing.assert_array_equal(
        truth.item_features["item_genre"], sim.item_genre[truth.candidates]
    )


def test_cli_simulate_then_validate(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "sim")
    assert (
        main(
            [
                "simulate",
                "--small",
                "--out",
                out,
                "--seed",
                "2",
                "--no-progress",
                "--compression",
                "gzip",
                "--num-requests",
                "800",
            ]
        )
        == 0
    )
    names = sorted(os.listdir(out))
    assert "schema.json" in names and "truth.npz" in names
    assert "oracle_train-00000-of-00002.tfrecord.gz" in names
    assert main(["validate", "--files", f"{out}/train*"]) == 0
    assert "validated 6400 records in 2 files: 0 bad records" in capsys.readouterr().out
    schema = ImpressionSchema.load(os.path.join(out, "schema.json"))
    assert schema.tasks == ("click", "like") and "item_genre" in schema
    truth = GroundTruth.load(out)
    assert json.loads(Path(out, "truth.json").read_text())["devices"] == list(truth.devices)

    # An existing dataset is kept unless --overwrite, and refused before simulating.
    def no_simulation(self, *args, **kwargs):
        raise AssertionError("simulated although the dataset was going to be refused")

    monkeypatch.setattr(ImpressionSimulator, "simulate", no_simulation)
    assert main(["simulate", "--small", "--out", out, "--no-progress"]) == 2
    assert f"{out} already holds a dataset; pass --overwrite" in capsys.readouterr().err
