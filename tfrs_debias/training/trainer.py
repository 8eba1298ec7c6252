"""`train`: Keras ``fit`` of an estimator on TFRecord impression logs, under tf.distribute.

A run directory holds everything needed to rebuild the model::

    RUN_DIR/config.json        EstimatorConfig
    RUN_DIR/schema.json        ImpressionSchema (the training schema)
    RUN_DIR/vocabularies.json  id vocabularies built from the training data
    RUN_DIR/model/weights.*    final weights (TF checkpoint)
    RUN_DIR/metrics.json       history, final metrics, throughput
    RUN_DIR/logs/              TensorBoard
    RUN_DIR/checkpoints/       per-epoch weights
    RUN_DIR/backup/            BackupAndRestore state (a killed run resumes from it)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.data.files import common_compression, expand_files
from tfrs_debias.data.reader import make_dataset
from tfrs_debias.data.validation import validate_files
from tfrs_debias.models import BaseEstimator, EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local devices) or ``multi_worker``
    (``MultiWorkerMirroredStrategy`` over the cluster in ``TF_CONFIG``; ring all-reduce).

    Create it before any other TensorFlow work in the process.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi_worker needs TF_CONFIG describing the cluster")
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    raise ValueError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def build_vocabularies(
    files: Sequence[str], schema: ImpressionSchema, min_count: int = 1
) -> tuple[dict[str, list], int]:
    """Id vocabularies (most frequent first, ids seen ``>= min_count`` times) and the
    number of rows, from one pass over ``files``."""
    id_schema = ImpressionSchema(schema.by_role("user_id", "item_id", "label"))
    columns: dict[str, list[np.ndarray]] = {
        f.name: [] for f in schema.by_role("user_id", "item_id")
    }
    rows = 0
    for batch in make_dataset(
        files, id_schema, batch_size=65536, shuffle=False, include_labels=False
    ):
        for name in columns:
            columns[name].append(batch[name].numpy())
        rows += int(next(iter(batch.values())).shape[0])
    vocabularies = {}
    for name, parts in columns.items():
        values, counts = np.unique(
            np.concatenate(parts) if parts else np.array([]), return_counts=True
        )
        keep = counts >= min_count
        order = np.argsort(-counts[keep], kind="stable")
        vocab = values[keep][order]
        vocabularies[name] = [v.decode() if isinstance(v, bytes) else int(v) for v in vocab]
    return vocabularies, rows


def count_rows(files: Sequence[str]) -> int:
    ds = tf.data.TFRecordDataset(list(files), compression_type=common_compression(files))
    ds = ds.batch(65536)
    return int(sum(int(b.shape[0]) for b in ds))


class ThroughputLogger(keras.callbacks.Callback):
    """Training examples/s per epoch (validation time excluded)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps, self._train_time = time.perf_counter(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._train_time is None:
            self._train_time = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = self._train_time or (time.perf_counter() - self._start)
        rate = self._steps * self.batch_size / max(elapsed, 1e-9)
        self.rates.append(rate)
        if logs is not None:
            logs["examples_per_sec"] = rate


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    model: BaseEstimator
    history: dict[str, list[float]]
    metrics: dict[str, Any]


def train(
    train_files: str | Sequence[str],
    out_dir: str,
    config: EstimatorConfig,
    schema: ImpressionSchema,
    valid_files: str | Sequence[str] | None = None,
    epochs: int = 5,
    batch_size: int = 4096,
    learning_rate: float | None = None,
    strategy: str | tf.distribute.Strategy = "default",
    early_stopping_patience: int = 2,
    validate: str = "sample",
    seed: int | None = 0,
    steps_per_epoch: int | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Trains ``config.model`` on ``train_files`` and writes the run to ``out_dir``.

    Args:
      train_files: glob(s) of TFRecord impression logs.
      out_dir: the run directory (see module docstring); a rerun resumes from its
        ``backup/`` if the previous run was killed.
      config: model and hyper-parameters; its tasks must be labels of ``schema``.
      schema: the impression schema of the files.
      valid_files: glob(s) for validation loss/AUC and early stopping.
      epochs: maximum epochs.
      batch_size: global batch size (split over replicas).
      learning_rate: Adam learning rate (Adam learned where Adagrad(0.1) did not, §5).
        Defaults to ``config.learning_rate``.
      strategy: a ``tf.distribute`` strategy or one of `STRATEGIES`.
      early_stopping_patience: epochs without val_loss improvement before stopping
        (best weights restored); 0 disables.
      validate: ``"sample"`` checks the first 10k records of each file before
        training, ``"all"`` every record, ``"none"`` nothing. Malformed input raises
        `InvalidDataError` naming file, record and field.
      seed: shuffling and initialisation seed.
      steps_per_epoch: defaults to one pass over the training rows.
      verbose: Keras progress output.
      callbacks: more Keras callbacks.

    Returns:
      `TrainResult` with the trained model, history and metrics.
    """
    strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
    if validate not in ("sample", "all", "none"):
        raise ValueError(f"validate must be sample, all or none, got {validate!r}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    train_paths = expand_files(train_files)
    valid_paths = expand_files(valid_files) if valid_files else []
    config = config.with_tasks(config.tasks or schema.tasks)
    missing = [t for t in config.tasks if t not in schema.tasks]
    if missing:
        raise ValueError(f"tasks {missing} are not labels of the schema {schema.tasks}")
    schema = schema.replace(drop=[t for t in schema.tasks if t not in config.tasks])
    if validate != "none":
        limit = None if validate == "all" else 10_000
        validate_files(
            train_paths + valid_paths, schema, max_records_per_file=limit
        ).raise_if_invalid()

    vocabularies, train_rows = build_vocabularies(train_paths, schema, config.min_id_count)
    if train_rows == 0:
        raise ValueError(f"no training rows in {train_paths}")
    steps = steps_per_epoch or math.ceil(train_rows / batch_size)
    valid_rows = count_rows(valid_paths) if valid_paths else 0
    chief = is_chief(strategy)
    work_dir = out_dir if chief else tempfile.mkdtemp(prefix="tfrs_debias_worker_")
    os.makedirs(work_dir, exist_ok=True)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = make_dataset(
        train_paths, schema, batch_size, seed=seed, num_epochs=None
    ).with_options(options)
    valid_ds = None
    if valid_paths:
        valid_ds = make_dataset(
            valid_paths, schema, batch_size, shuffle=False, num_epochs=None
        ).with_options(options)

    with strategy.scope():
        model = build_estimator(schema, config, vocabularies)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate or config.learning_rate))
        # Built before fit, so BackupAndRestore can restore into existing variables.
        model(next(iter(make_dataset(train_paths, schema, 8, shuffle=False))))

    throughput = ThroughputLogger(batch_size)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(work_dir, "backup")),
        keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"), update_freq="epoch"),
        keras.callbacks.ModelCheckpoint(
            os.path.join(work_dir, "checkpoints", "epoch-{epoch:02d}"), save_weights_only=True
        ),
        throughput,
        *callbacks,
    ]
    if valid_ds is not None and early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
            )
        )
    try:
        history = model.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps,
            validation_data=valid_ds,
            validation_steps=math.ceil(valid_rows / batch_size) if valid_ds is not None else None,
            callbacks=callbacks,
            verbose=verbose,
        )
    except tf.errors.InvalidArgumentError:
        # Malformed input past the sampled records: say where, not a stack trace.
        validate_files(train_paths + valid_paths, schema).raise_if_invalid()
        raise

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    metrics = {
        "model": config.model,
        "epochs_run": len(hist.get("loss", [])),
        "train_rows": train_rows,
        "valid_rows": valid_rows,
        "batch_size": batch_size,
        "num_replicas": strategy.num_replicas_in_sync,
        "examples_per_sec": float(np.median(throughput.rates[1:] or throughput.rates)),
        "final": {k: v[-1] for k, v in hist.items()},
    }
    save_run(work_dir, model, metrics, hist)
    if not chief:
        shutil.rmtree(work_dir, ignore_errors=True)
    return TrainResult(out_dir, model, hist, metrics)


def save_run(out_dir: str, model: BaseEstimator, metrics: dict, history: dict) -> None:
    """Writes config, schema, vocabularies, final weights and metrics; the weights go to
    a temporary folder renamed into place, so ``model/`` is never half-written."""
    tmp = os.path.join(out_dir, f".model.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_weights(os.path.join(tmp, "weights"))
    final = os.path.join(out_dir, "model")
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_json(os.path.join(out_dir, "config.json"), model.config.to_dict())
    _write_json(os.path.join(out_dir, "vocabularies.json"), model.vocabularies)
    model.schema.save(os.path.join(out_dir, "schema.json"))
    _write_json(os.path.join(out_dir, "metrics.json"), {**metrics, "history": history})


def load_run(run_dir: str) -> BaseEstimator:
    """Rebuilds the trained estimator of a run directory with its final weights."""
    for name in ("config.json", "schema.json", "vocabularies.json", "model"):
        if not os.path.exists(os.path.join(run_dir, name)):
            raise FileNotFoundError(f"{run_dir}: not a training run (no {name})")
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as fh:
        config = EstimatorConfig.from_dict(json.load(fh))
    with open(os.path.join(run_dir, "vocabularies.json"), encoding="utf-8") as fh:
        vocabularies = json.load(fh)
    schema = ImpressionSchema.load(os.path.join(run_dir, "schema.json"))
    model = build_estimator(schema, config, vocabularies)
    model.load_weights(os.path.join(run_dir, "model", "weights")).expect_partial()
    return model


def _write_json(path: str, data: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
