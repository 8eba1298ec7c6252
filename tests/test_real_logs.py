"""Logs the simulator never writes: open device names, remote filesystems, small data."""

import numpy as np
import pytest

from tfrs_debias.backend import tf
from tfrs_debias.cli import main
from tfrs_debias.data import ImpressionSimulator, LogDirectory, SimulatorConfig, write_examples
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.serving import LoadedExport
from tfrs_debias.training import auto_batch_size, auto_epochs, load_run, train


def test_auto_batch_size_and_epochs_by_hand():
    # 7k rows: 1% is 70 -> 2**6 = 64, clipped up to 256; 25 steps/epoch -> 500/25 = 20 epochs.
    assert auto_batch_size(7000) == 256 and auto_epochs(6300, 256) == 20
    # 480k rows: 4800 -> 2**12 = 4096; 118 steps/epoch -> at least 5 epochs.
    assert auto_batch_size(480_000) == 4096 and auto_epochs(480_000, 4096) == 5
    assert auto_epochs(10, 256) == 50  # capped


def _tablet_logs(path, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    device = rng.choice(["phone", "tablet", "smart-tv"], n)
    position = rng.integers(0, 12, n)
    cols = {
        "user_id": rng.integers(0, 200, n),
        "item_id": rng.integers(0, 100, n),
        "request_id": np.arange(n) // 10,
        "position": position,
        "device": device,
        "click": (rng.random(n) < 0.5 / (1 + position)).astype(int),
    }
    schema = ImpressionSchema.default(tasks=("click",))
    write_examples(cols, schema, str(path), "train", progress=False)
    return schema


def test_tablet_device_without_schema_file_validates_trains_exports_serves(tmp_path, capsys):
    _tablet_logs(tmp_path / "logs")
    files = str(tmp_path / "logs" / "train-*")
    assert main(["validate", "--files", files, "--tasks", "click"]) == 0
    assert "values of device:" in capsys.readouterr().out
    run = str(tmp_path / "run")
    args = ["train", "--train-files", files, "--tasks", "click", "--out", run, "--quiet"]
    assert main([*args, "--epochs", "1", "--model", "position_debiased"]) == 0
    model = load_run(run)
    assert set(model.vocabularies["device"]) == {"phone", "tablet", "smart-tv"}
    assert sorted(model.vocabularies["position"]) == list(range(12))  # range from the data
    assert main(["export", "--run", run, "--out", str(tmp_path / "m")]) == 0
    export = LoadedExport(str(tmp_path / "m"))
    biased = export.task_probabilities("biased")
    feats = {
        "user_id": tf.constant([1, 1, 1], tf.int64),
        "item_id": tf.constant([2, 2, 2], tf.int64),
        "position": tf.constant([0, 0, 99], tf.int64),
        "device": tf.constant([b"tablet", b"watch", b"tablet"]),  # 'watch', 99: unseen
    }
    p = biased(feats)
    assert p.shape == (3, 1) and np.all((p > 0) & (p < 1))


def test_ram_filesystem_simulate_train_evaluate():
    data = LogDirectory("ram://tfrs_debias_test/data")
    config = SimulatorConfig.small(
        num_users=300, num_items=100, num_requests=1000, num_test_users=50, truth_candidates=20
    )
    ImpressionSimulator(config).write(data.path, progress=False)
    assert {"train", "full_train", "test"} <= set(data.splits)
    run = "ram://tfrs_debias_test/run"
    train(
        data.require("train"),
        run,
        EstimatorConfig(),
        data.schema(),
        epochs=1,
        steps_per_epoch=2,
        verbose=0,
    )
    model = load_run(run)
    result = Evaluator(data.truth()).evaluate(Scorer.from_estimator(model))
    assert 0 < result["ranking"]["ndcg"]["click"]["@10"] <= 1
    assert tf.io.gfile.exists(f"{run}/metrics.json")


@pytest.mark.parametrize("preset", ["search"])
def test_search_preset_has_query_pools(preset):
    sim = ImpressionSimulator(SimulatorConfig.search(num_requests=200))
    splits, truth = sim.simulate(progress=False)
    train = splits["train"]
    # Each query shows only documents of its own pool of 10.
    for q in np.unique(train["user_id"])[:20]:
        assert len(np.unique(train["item_id"][train["user_id"] == q])) <= 10
    assert truth.candidates.shape[1] == 10 and tuple(truth.devices) == ("web",)
    # The full-information twin has the same slates and more clicks (every slot examined).
    full = splits["full_train"]
    np.testing.assert_array_equal(full["item_id"], train["item_id"])
    assert full["click"].mean() > train["click"].mean()
