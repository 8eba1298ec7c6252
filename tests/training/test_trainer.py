"""`train`: the run folder and an identical reload, task subsets, malformed input past
the sample, exact resume, multi-worker resume, and the automatic batch size and epochs."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.training.support import SMALL, load_schema
from tfrs_debias.backend import keras
from tfrs_debias.cli import main
from tfrs_debias.data import (
    InvalidDataError,
    make_dataset,
)
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import auto_batch_size, auto_epochs, load_run, train


def test_auto_batch_size_and_epochs_by_hand():
    # 7k rows: 1% is 70 -> 2**6 = 64, clipped up to 256; 25 steps/epoch -> 2000/25 = 80,
    # capped at 50 epochs.
    assert auto_batch_size(7000) == 256 and auto_epochs(6300, 256) == 50
    # 280k rows (the search-like preset): 2800 -> 2**11 = 2048; 137 steps -> 15 epochs.
    assert auto_batch_size(280_000) == 2048 and auto_epochs(280_000, 2048) == 15
    # 480k rows: 4800 -> 2**12 = 4096; 118 steps/epoch -> 2000/118 -> 17 epochs.
    assert auto_batch_size(480_000) == 4096 and auto_epochs(480_000, 4096) == 17
    # 10M rows: 2442 steps an epoch -> the floor of 5 epochs.
    assert auto_epochs(10_000_000, 4096) == 5
    assert auto_epochs(10, 256) == 50  # capped


def test_train_writes_run_and_reloads_identically(small_sim_dir, tmp_path):
    out = str(tmp_path / "run")
    result = train(
        f"{small_sim_dir}/train-*",
        out,
        EstimatorConfig(model="factorized", item_marginal_alpha=0.3, **SMALL),
        load_schema(small_sim_dir),
        valid_files=f"{small_sim_dir}/valid-*",
        epochs=2,
        batch_size=2048,
        verbose=0,
    )
    for name in (
        "config.json",
        "schema.json",
        "vocabularies.json",
        "metrics.json",
        "logs",
        "checkpoints",
    ):
        assert os.path.exists(os.path.join(out, name)), name
    metrics = json.loads(Path(out, "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["train_rows"] == 48000
    assert metrics["examples_per_sec"] > 0 and "val_click_auc" in metrics["final"]
    assert os.listdir(os.path.join(out, "logs"))  # TensorBoard events
    batch = next(
        iter(
            make_dataset(f"{small_sim_dir}/test-*", load_schema(small_sim_dir), 512, shuffle=False)
        )
    )
    reloaded = load_run(out)
    np.testing.assert_array_equal(
        reloaded.debiased_logits(batch).numpy(), result.model.debiased_logits(batch).numpy()
    )
    np.testing.assert_array_equal(reloaded(batch).numpy(), result.model(batch).numpy())
    # The epoch checkpoints and model/ hold weights only (no Adam m/v copies of the
    # tables); the trained model keeps its optimizer.
    table = "embedding/_embeddings/user_id/embeddings/.ATTRIBUTES/VARIABLE_VALUE"
    for prefix in (
        os.path.join(out, "model", "weights"),
        os.path.join(out, "checkpoints", "epoch-02"),
    ):
        names = [name for name, _ in tf.train.list_variables(prefix)]
        assert any(name.endswith(table) for name in names), names[:5]
        assert not [name for name in names if "optimizer" in name], prefix
    assert result.model.optimizer is not None and result.model.optimizer.iterations > 0


def test_tasks_subset_and_unknown_task(small_sim_dir, tmp_path):
    out = str(tmp_path / "run")
    result = train(
        f"{small_sim_dir}/train-*",
        out,
        EstimatorConfig(model="multi_task", tasks=("like",), **SMALL),
        load_schema(small_sim_dir),
        epochs=1,
        steps_per_epoch=3,
        verbose=0,
    )
    assert result.model.task_names == ("like",)
    assert load_schema(out).tasks == ("like",)
    with pytest.raises(ValueError, match=r"tasks \['watch'\] are not labels"):
        train(
            f"{small_sim_dir}/train-*",
            out,
            EstimatorConfig(tasks=("watch",)),
            load_schema(small_sim_dir),
            epochs=1,
            verbose=0,
        )


def _bad_copy(src, dst, bad_row, drop=None, value=None):
    """The small train split with one bad record at ``bad_row`` (a dropped feature, or a
    label value no model should accept)."""
    schema = load_schema(src)
    rows = [r.numpy() for r in tf.data.TFRecordDataset(tf.io.gfile.glob(f"{src}/train-*"))]
    ex = tf.train.Example.FromString(rows[bad_row])
    if drop:
        del ex.features.feature[drop]
    if value is not None:
        ex.features.feature["click"].int64_list.value[:] = [value]
    rows[bad_row] = ex.SerializeToString()
    os.makedirs(dst)
    path = os.path.join(dst, "train-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for r in rows:
            w.write(r)
    schema.save(os.path.join(dst, "schema.json"))
    return path


def test_training_refuses_malformed_input_with_clear_message(small_sim_dir, tmp_path, capsys):
    path = _bad_copy(small_sim_dir, str(tmp_path / "bad"), bad_row=5, value=2)
    out = str(tmp_path / "run")
    code = main(["train", "--train-files", path, "--out", out, "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}: record 5: label 'click' must be 0 or 1, got 2" in err
    assert "Traceback" not in err
    assert not os.path.exists(os.path.join(out, "model"))


def test_a_config_the_model_refuses_writes_no_run_folder(small_sim_dir, tmp_path, capsys):
    """The estimator's config checks run before the run folder exists: a refused config
    leaves nothing behind that would block the corrected rerun."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"propensity_weighting": "ips"}))  # the logs have none
    out = str(tmp_path / "run")
    files = f"{small_sim_dir}/train-*"
    args = ["train", "--train-files", files, "--out", out, "--epochs", "1", "--quiet"]
    code = main([*args, "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "propensity_weighting 'ips' needs a propensity feature" in err
    assert "Traceback" not in err and not os.path.exists(out)


def test_malformed_record_past_the_sample_is_still_named(small_sim_dir, tmp_path):
    path = _bad_copy(small_sim_dir, str(tmp_path / "bad"), bad_row=30000, drop="device")
    with pytest.raises(InvalidDataError, match=r"record 30000: missing feature 'device'"):
        train(
            path,
            str(tmp_path / "run"),
            EstimatorConfig(**SMALL),
            load_schema(small_sim_dir),
            # Two epochs: the shuffle window straddles the epoch boundary of the repeated
            # stream, so one epoch's steps need not reach every record of the file.
            epochs=2,
            batch_size=4096,
            verbose=0,
        )


class _Killed(Exception):
    pass


class _KillAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.kill_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.kill_epoch:
            raise _Killed()


def test_killed_run_resumes_exactly(small_sim_dir, tmp_path):
    """Killed in its last epoch and rerun, a run ends as the uninterrupted one: same
    epochs, history (earlier epochs kept), early-stopping decision and val_loss."""
    files = f"{small_sim_dir}/train-*"
    config = EstimatorConfig(model="position_debiased", **SMALL)
    kw = dict(
        epochs=5,
        steps_per_epoch=6,
        batch_size=512,
        early_stopping_patience=1,
        learning_rate=0.03,  # fast, so val_loss may turn up and early stopping act
        verbose=0,
        validate="none",
    )
    full = train(files, str(tmp_path / "full"), config, load_schema(small_sim_dir), **kw)
    last = full.metrics["epochs_run"] - 1
    assert last >= 2  # (whether early stopping acts varies; its replay is tested by hand)
    out = str(tmp_path / "killed")
    with pytest.raises(_Killed):  # before the last epoch's early-stopping decision
        train(
            files, out, config, load_schema(small_sim_dir), callbacks=[_KillAfterEpoch(last)], **kw
        )
    assert os.listdir(os.path.join(out, "backup"))
    resumed = train(files, out, config, load_schema(small_sim_dir), **kw)
    assert resumed.metrics["resumed_at_epoch"] == last  # earlier epochs from the backup
    for key in ("epochs_run", "best_epoch"):
        assert resumed.metrics[key] == full.metrics[key], key
    assert len(resumed.history["loss"]) == full.metrics["epochs_run"]
    np.testing.assert_allclose(resumed.history["val_loss"], full.history["val_loss"], rtol=5e-3)
    final, uninterrupted = resumed.metrics["final"]["val_loss"], full.metrics["final"]["val_loss"]
    assert abs(final - uninterrupted) / uninterrupted < 0.005
    assert not os.path.exists(os.path.join(out, "backup", "history.json"))


def test_rerun_into_another_runs_folder_is_refused(small_sim_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["train", "--train-files", f"{small_sim_dir}/train-*", "--out", out, "--quiet"]
    base += ["--epochs", "1", "--steps-per-epoch", "2", "--validate", "none"]
    assert main([*base, "--model", "multi_task"]) == 0
    capsys.readouterr()
    # A different model into the finished run: refused before any pass over the data.
    assert main([*base, "--model", "factorized"]) == 2
    err = capsys.readouterr().err
    assert "holds a different run (changed: config.model" in err and "--overwrite" in err
    # The same command again: a finished run is not silently retrained.
    assert main([*base, "--model", "multi_task"]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    Path(out, "checkpoints", "epoch-07.index").write_text("stale")
    Path(out, "notes.txt").write_text("mine")
    assert main([*base, "--model", "factorized", "--overwrite"]) == 0
    assert not Path(out, "checkpoints", "epoch-07.index").exists()  # old run cleared
    assert Path(out, "notes.txt").exists()  # other files left alone
    assert json.loads(Path(out, "run.json").read_text())["config"]["model"] == "factorized"
    # An output folder that cannot be written fails at once, in one line.
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # (root can write anywhere)
            code = main([*base[:4], "--out", str(locked / "run"), *base[6:]])
            assert code == 2 and "cannot write here" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_workers(small_sim_dir, out, epochs, steps):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        cmd = [sys.executable, "-m", "tfrs_debias.cli", "train", "--out", out]
        cmd += ["--train-files", f"{small_sim_dir}/train-*", "--model", "position_debiased"]
        cmd += ["--strategy", "multi_worker", "--epochs", str(epochs), "--quiet"]
        cmd += ["--steps-per-epoch", str(steps), "--batch-size", "512", "--validate", "none"]
        cmd += ["--early-stopping-patience", "0"]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    return procs


def test_multi_worker_killed_cluster_resumes_on_loopback(small_sim_dir, tmp_path):
    """Two workers on loopback; one is killed -9 once a backup exists, both are
    restarted: the run resumes from the backup, AUCs are AUCs (not summed over
    workers), only the chief reports, and no worker folder is left behind."""
    from tfrs_debias.training.run_state import completed_epochs

    out = str(tmp_path / "run")
    epochs, steps = 12, 20
    procs = _start_workers(small_sim_dir, out, epochs, steps)
    deadline = time.time() + 240
    while completed_epochs(os.path.join(out, "backup")) < 1:
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.25)
    procs[1].kill()  # kill -9 of the non-chief; then the cluster is restarted
    procs[0].kill()
    for p in procs:
        p.communicate(timeout=60)
    done = completed_epochs(os.path.join(out, "backup"))
    assert 1 <= done < epochs
    procs = _start_workers(small_sim_dir, out, epochs, steps)
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text[-3000:]
    # Only the chief reports (worker 0 is the chief: no 'chief' task in the cluster).
    assert f"trained position_debiased for {epochs} epochs" in outputs[0]
    assert "trained" not in outputs[1] and "run written" not in outputs[1]
    metrics = json.loads(Path(out, "metrics.json").read_text())
    assert metrics["num_replicas"] == 2 and metrics["epochs_run"] == epochs
    assert metrics["resumed_at_epoch"] >= done
    assert len(metrics["history"]["loss"]) == epochs  # the killed run's epochs kept
    for key in ("click_auc", "like_auc", "val_click_auc"):
        assert 0.5 < metrics["final"][key] < 1.0, key
    assert load_run(out).task_names == ("click", "like")  # the chief wrote the model
    assert not os.listdir(os.path.join(out, ".workers"))
    assert not [p for p in os.listdir(tempfile.gettempdir()) if p.startswith("tfrs_debias_worker")]
