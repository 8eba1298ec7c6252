import json
import os
import socket
import subprocess
import sys
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


def test_killed_run_resumes_where_it_stopped(small_sim_dir, tmp_path):
    out = str(tmp_path / "run")
    args = (
        f"{small_sim_dir}/train-*",
        out,
        EstimatorConfig(model="position_debiased", **SMALL),
        _schema(small_sim_dir),
    )
    with pytest.raises(_Killed):
        train(*args, epochs=3, steps_per_epoch=4, verbose=0, callbacks=[_KillAfterEpoch(1)])
    assert os.listdir(os.path.join(out, "backup"))
    result = train(*args, epochs=3, steps_per_epoch=4, verbose=0)
    assert len(result.history["loss"]) == 1  # epochs 1 and 2 were restored, only 3 ran


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_training_on_loopback(small_sim_dir, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = str(tmp_path / "run")
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        cmd = [
            sys.executable,
            "-m",
            "tfrs_debias.cli",
            "train",
            "--train-files",
            f"{small_sim_dir}/train-*",
            "--out",
            out,
            "--model",
            "position_debiased",
            "--strategy",
            "multi_worker",
            "--epochs",
            "2",
            "--steps-per-epoch",
            "3",
            "--batch-size",
            "512",
            "--quiet",
            "--validate",
            "none",
        ]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text[-3000:]
    # Only the chief reports (worker 0 is the chief: no 'chief' task in the cluster).
    assert "trained position_debiased for 2 epochs" in outputs[0]
    assert "trained" not in outputs[1] and "run written" not in outputs[1]
    metrics = json.loads(Path(out, "metrics.json").read_text())
    assert metrics["num_replicas"] == 2
    assert load_run(out).task_names == ("click", "like")  # the chief wrote the model
