import json
import os
from pathlib import Path

import numpy as np
import pytest

from tfrs_debias.cli import main
from tfrs_debias.training import load_run
from tfrs_debias.tuning import grouped_ndcg


def test_grouped_ndcg_by_hand():
    groups = np.array([1, 1, 1, 2, 2, 3, 3])
    scores = np.array([3.0, 2.0, 1.0, 0.0, 1.0, 5.0, 4.0])
    labels = np.array([1, 0, 1, 1, 0, 0, 0])  # request 3 has no click: skipped
    # request 1: DCG = 1 + 1/log2(4) = 1.5, ideal = 1 + 1/log2(3); request 2: 1/log2(3)
    expected = np.mean([1.5 / (1 + 1 / np.log2(3)), 1 / np.log2(3)])
    assert grouped_ndcg(groups, scores, labels, 10) == pytest.approx(expected)


def test_tune_resumes_and_best_config_trains(small_sim_dir, tmp_path, capsys):
    out = str(tmp_path / "tune")
    argv = [
        "tune",
        "--train-files",
        f"{small_sim_dir}/train-*",
        "--valid-files",
        f"{small_sim_dir}/valid-*",
        "--model",
        "factorized",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "3",
        "--out",
        out,
        "--quiet",
        "--fix",
        "hidden_depth=1",
        "--fix",
        "embedding_dim=8",
    ]
    assert main([*argv, "--max-trials", "2"]) == 0
    first = capsys.readouterr().out
    assert "objective: ndcg_at_10 (higher is better)" in first
    results = json.loads(Path(out, "results.json").read_text())
    assert len(results["trials"]) == 2
    scores = [t["ndcg_at_10"] for t in results["trials"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    trial_dirs = sorted(d for d in os.listdir(Path(out, "factorized")) if d.startswith("trial"))
    mtimes = {d: os.path.getmtime(Path(out, "factorized", d, "trial.json")) for d in trial_dirs}
    # resumed: only the third trial runs
    assert main([*argv, "--max-trials", "3"]) == 0
    results = json.loads(Path(out, "results.json").read_text())
    assert len(results["trials"]) == 3
    for d, mtime in mtimes.items():
        assert os.path.getmtime(Path(out, "factorized", d, "trial.json")) == mtime
    best = json.loads(Path(out, "best_config.json").read_text())
    assert best["model"] == "factorized" and best["embedding_dim"] == 8
    run = str(tmp_path / "run")
    assert (
        main(
            [
                "train",
                "--train-files",
                f"{small_sim_dir}/train-*",
                "--config",
                str(Path(out, "best_config.json")),
                "--out",
                run,
                "--epochs",
                "1",
                "--steps-per-epoch",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert load_run(run).config.to_dict() == {
        **best,
        "task_weights": [1.0, 1.0],
        "value_weights": [1.0, 1.0],
        "task_losses": ["bce", "bce"],
    }


def test_val_loss_objective_without_truth(small_sim_dir, tmp_path, capsys):
    out = str(tmp_path / "tune")
    assert (
        main(
            [
                "tune",
                "--train-files",
                f"{small_sim_dir}/train-*",
                "--valid-files",
                f"{small_sim_dir}/valid-*",
                "--model",
                "multi_task",
                "--epochs",
                "1",
                "--steps-per-epoch",
                "2",
                "--out",
                out,
                "--quiet",
                "--objective",
                "val_loss",
                "--max-trials",
                "1",
                "--tuner",
                "bayesian",
            ]
        )
        == 0
    )
    assert "objective: val_loss (lower is better)" in capsys.readouterr().out


def test_trials_train_as_train_does_on_small_data(tmp_path, monkeypatch):
    """Without --batch-size / --epochs a trial gets `train`'s data-sized schedule (a
    ~850-row ratings set: batch 256 and room for 2000 steps, not 4096 x 3 = 3 steps)
    and early stopping on the validation loss that keeps the best epoch's weights;
    given values are used as given."""
    from tfrs_debias.backend import keras
    from tfrs_debias.data import LogDirectory
    from tfrs_debias.data.sources.mnar_ratings import MnarRatingsConfig, MnarRatingsSimulator
    from tfrs_debias.tuning import tuner as tuner_module

    data = LogDirectory(str(tmp_path / "data"))
    MnarRatingsSimulator(MnarRatingsConfig(num_users=300, num_items=100)).write(
        data.path, progress=False
    )
    seen = []

    class Stop(Exception):
        pass

    def search(self, *args, **kwargs):
        seen.append(kwargs)
        raise Stop

    monkeypatch.setattr(tuner_module.kt.RandomSearch, "search", search)

    def run(**kw):
        with pytest.raises(Stop):
            tuner_module.run_tuning(
                data.require("train"),
                data.require("valid"),
                data.schema(),
                "multi_task",
                str(tmp_path / f"tune{len(seen)}"),
                max_trials=1,
                **kw,
            )
        return seen[-1]

    rows = tuner_module.count_rows(data.require("train"), schema=data.schema())
    assert 200 < rows < 25_600  # under 256 x 100 rows: the smallest batch
    auto = run()
    # 1% of the rows as a power of two, at least 256; epochs for 2000 steps (<= 50)
    assert auto["steps_per_epoch"] == -(-rows // 256)
    assert auto["epochs"] == min(50, -(-2000 // auto["steps_per_epoch"]))
    (stopper,) = auto["callbacks"]
    assert isinstance(stopper, keras.callbacks.EarlyStopping)
    assert stopper.monitor == "val_loss" and stopper.restore_best_weights
    given = run(batch_size=4096, epochs=3, early_stopping_patience=0)
    assert (given["steps_per_epoch"], given["epochs"], given["callbacks"]) == (1, 3, [])


def test_random_slice_objective_groups_by_request_else_by_user(tmp_path):
    """NDCG@10 of the debiased scores on the slice, per request; a ratings slice (no
    request_id) is scored per user. Values by hand."""
    import tensorflow as tf

    from tfrs_debias.data import write_examples
    from tfrs_debias.schema import ImpressionSchema
    from tfrs_debias.tuning.tuner import random_slice_objective

    class ScoresByItem:  # the debiased score is the item id
        task_names = ("click",)

        def debiased_logits(self, features):
            return tf.cast(tf.reshape(features["item_id"], [-1, 1]), tf.float32)

    columns = {
        "user_id": np.array([1, 1, 1, 2, 2]),
        "item_id": np.array([3, 2, 1, 5, 4]),
        "request_id": np.array([10, 10, 11, 12, 12]),
        "click": np.array([0, 1, 1, 1, 0]),
    }
    ratings = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False)
    files = write_examples(
        {k: v for k, v in columns.items() if k != "request_id"},
        ratings,
        str(tmp_path / "ratings"),
        "random_slice",
        progress=False,
    )
    # user 1: items 3, 2, 1 ranked in that order, clicks on 2 and 1:
    # DCG = 1/log2(3) + 1/log2(4), ideal = 1 + 1/log2(3); user 2: the click ranks first.
    user1 = (1 / np.log2(3) + 0.5) / (1 + 1 / np.log2(3))
    objective = random_slice_objective(files, ratings, "click")
    assert objective(ScoresByItem()) == pytest.approx((user1 + 1.0) / 2)
    # AUC over all rows: positives score 2, 1, 5, negatives 3, 4 -> 2 of 6 pairs won.
    auc = random_slice_objective(files, ratings, "click", metric="auc")
    assert auc(ScoresByItem()) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="metric must be"):
        random_slice_objective(files, ratings, "click", metric="map")
    # A slice without both labels cannot score: refused up front, naming the files.
    all_clicks = write_examples(
        {**{k: v for k, v in columns.items() if k != "request_id"}, "click": np.ones(5, int)},
        ratings,
        str(tmp_path / "clicked"),
        "random_slice",
        progress=False,
    )
    with pytest.raises(ValueError, match=r"random slice .*clicked.*: 'click' has 5 positive"):
        random_slice_objective(all_clicks, ratings, "click", metric="auc")
    assert random_slice_objective(all_clicks, ratings, "click")(ScoresByItem()) == 1.0
    logs = ImpressionSchema.default(tasks=("click",), bias=False)
    files = write_examples(columns, logs, str(tmp_path / "logs"), "random_slice", progress=False)
    # request 10: the click (item 2) ranks second -> 1/log2(3); requests 11, 12: first.
    objective = random_slice_objective(files, logs, "click")
    assert objective(ScoresByItem()) == pytest.approx((1 / np.log2(3) + 1 + 1) / 3)
