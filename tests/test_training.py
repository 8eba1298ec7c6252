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

from tfrs_debias.backend import keras
from tfrs_debias.cli import main
from tfrs_debias.data import InvalidDataError, make_dataset, write_examples
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training import build_vocabularies, load_run, train

SMALL = dict(embedding_dim=8, hidden_units=(16,), component_units=(8,), gate_units=(4,))


def _schema(d):
    return ImpressionSchema.load(os.path.join(d, "schema.json"))


def test_vocabularies_by_frequency(tmp_path):
    schema = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False)
    cols = {
        "user_id": np.array([5, 5, 5, 7, 7, 9]),
        "item_id": np.array([1, 2, 1, 1, 3, 3]),
        "click": np.array([0, 1, 0, 1, 0, 1]),
    }
    write_examples(cols, schema, str(tmp_path), "train", progress=False)
    vocab, rows = build_vocabularies(
        [str(tmp_path / "train-00000-of-00001.tfrecord.gz")], schema, min_count=2
    )
    assert rows == 6
    assert vocab == {"user_id": [5, 7], "item_id": [1, 3]}


def test_train_writes_run_and_reloads_identically(small_sim_dir, tmp_path):
    out = str(tmp_path / "run")
    result = train(
        f"{small_sim_dir}/train-*",
        out,
        EstimatorConfig(model="factorized", item_marginal_alpha=0.3, **SMALL),
        _schema(small_sim_dir),
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
        iter(make_dataset(f"{small_sim_dir}/test-*", _schema(small_sim_dir), 512, shuffle=False))
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
        _schema(small_sim_dir),
        epochs=1,
        steps_per_epoch=3,
        verbose=0,
    )
    assert result.model.task_names == ("like",)
    assert _schema(out).tasks == ("like",)
    with pytest.raises(ValueError, match=r"tasks \['watch'\] are not labels"):
        train(
            f"{small_sim_dir}/train-*",
            out,
            EstimatorConfig(tasks=("watch",)),
            _schema(small_sim_dir),
            epochs=1,
            verbose=0,
        )


def _bad_copy(src, dst, bad_row, drop=None, value=None):
    """The small train split with one bad record at ``bad_row`` (a dropped feature, or a
    label value no model should accept)."""
    schema = _schema(src)
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


def test_malformed_record_past_the_sample_is_still_named(small_sim_dir, tmp_path):
    path = _bad_copy(small_sim_dir, str(tmp_path / "bad"), bad_row=30000, drop="device")
    with pytest.raises(InvalidDataError, match=r"record 30000: missing feature 'device'"):
        train(
            path,
            str(tmp_path / "run"),
            EstimatorConfig(**SMALL),
            _schema(small_sim_dir),
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
    full = train(files, str(tmp_path / "full"), config, _schema(small_sim_dir), **kw)
    last = full.metrics["epochs_run"] - 1
    assert last >= 2  # (whether early stopping acts varies; its replay is tested by hand)
    out = str(tmp_path / "killed")
    with pytest.raises(_Killed):  # before the last epoch's early-stopping decision
        train(files, out, config, _schema(small_sim_dir), callbacks=[_KillAfterEpoch(last)], **kw)
    assert os.listdir(os.path.join(out, "backup"))
    resumed = train(files, out, config, _schema(small_sim_dir), **kw)
    assert resumed.metrics["resumed_at_epoch"] == last  # earlier epochs from the backup
    for key in ("epochs_run", "best_epoch"):
        assert resumed.metrics[key] == full.metrics[key], key
    assert len(resumed.history["loss"]) == full.metrics["epochs_run"]
    np.testing.assert_allclose(resumed.history["val_loss"], full.history["val_loss"], rtol=5e-3)
    final, uninterrupted = resumed.metrics["final"]["val_loss"], full.metrics["final"]["val_loss"]
    assert abs(final - uninterrupted) / uninterrupted < 0.005
    assert not os.path.exists(os.path.join(out, "backup", "history.json"))


def test_run_state_replays_early_stopping_by_hand(tmp_path):
    """val_loss 1.0, 0.8, 0.9 with patience 2: best 0.8 at epoch 2 (index 1), one epoch
    waited; the best weights come from that epoch's checkpoint."""
    from tfrs_debias.training.run_state import RunState

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    pattern = str(tmp_path / "epoch-{epoch:02d}")
    model.set_weights([np.full((2, 1), 7.0), np.zeros(1)])
    model.save_weights(pattern.format(epoch=2))
    model.set_weights([np.zeros((2, 1)), np.zeros(1)])
    stopper = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    state = RunState(str(tmp_path / "history.json"), stopper, pattern)
    state.set_model(model)
    stopper.set_model(model)
    history = [{"loss": 2.0, "val_loss": v} for v in (1.0, 0.8, 0.9)]
    (tmp_path / "history.json").write_text(json.dumps({"epochs": history + [history[0]]}))
    stopper.on_train_begin()
    state.on_train_begin()
    state.on_epoch_begin(3)  # the backup says 3 epochs were done: the 4th entry is dropped
    assert state.history["val_loss"] == [1.0, 0.8, 0.9]
    assert (stopper.best, stopper.best_epoch, stopper.wait) == (0.8, 1, 1)
    assert stopper.best_weights[0].tolist() == [[7.0], [7.0]]
    assert model.get_weights()[0].tolist() == [[0.0], [0.0]]  # current weights kept


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


def test_value_counter_merges_batches_by_hand():
    from tfrs_debias.training.data_pass import ValueCounter

    counter = ValueCounter(min_buffer=2)  # merges after almost every batch
    for batch in ([5, 5, 7], [7, 9], [5], [9, 9, 9]):
        counter.add(np.array(batch))
    values, counts = counter.result()
    assert values.tolist() == [5, 7, 9] and counts.tolist() == [3, 2, 4]
    strings = ValueCounter()
    strings.add(np.array([b"b", b"a", b"b"]))
    assert [v.tolist() for v in strings.result()] == [[b"a", b"b"], [1, 2]]
    assert ValueCounter().result()[0].size == 0


def test_checkpoint_retention_keeps_the_last_and_the_best(small_sim_dir, tmp_path):
    from tfrs_debias.training.checkpoint_retention import CheckpointRetention

    history = {"val_loss": [0.9, 0.5, 0.7, 0.8, 0.6]}
    rule = CheckpointRetention("e-{epoch:02d}", lambda: history, keep_last=2)
    assert rule.kept_epochs(5) == {1, 3, 4}  # the best (0.5, epoch 2) and the last two
    assert rule.kept_epochs(2) == {0, 1}
    out = tmp_path / "run"
    result = train(
        f"{small_sim_dir}/train-*",
        str(out),
        EstimatorConfig(model="multi_task", **SMALL),
        _schema(small_sim_dir),
        epochs=4,
        steps_per_epoch=2,
        early_stopping_patience=0,
        keep_checkpoints=1,
        verbose=0,
        validate="none",
    )
    best = int(np.argmin(result.history["val_loss"])) + 1
    kept = sorted({p.name.split(".")[0] for p in (out / "checkpoints").glob("epoch-*.index")})
    assert kept == sorted({f"epoch-{best:02d}", "epoch-04"})


def test_learned_examination_curve_is_logged_each_epoch(small_sim_dir, tmp_path):
    schema = _schema(small_sim_dir)
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
    assert result.history["learning_rate"][-1] == pytest.approx(1e-3)
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
