"""`train`: Keras ``fit`` of an estimator on TFRecord impression logs, under tf.distribute.

The run folder's layout, and what a rerun into it does (resume a killed run, refuse
another run unless ``overwrite``), belong to `RunDirectory`. A killed run resumes
exactly: the weights, optimizer and epoch from ``BackupAndRestore``, the history and
early-stopping state from `RunState`, and the data stream from where it stopped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.data.io.files import (
    expand_files,
    move_tree,
    read_json,
    remove_tree,
    write_json,
)
from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import make_dataset
from tfrs_debias.data.io.validation import located_errors, validate_files
from tfrs_debias.layers.feature_embedding import vocabulary_lists
from tfrs_debias.models import BaseEstimator, EstimatorConfig, build_estimator
from tfrs_debias.models.build import check_trainable
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training.checkpoint_retention import CheckpointRetention
from tfrs_debias.training.data_pass import build_vocabularies, count_rows
from tfrs_debias.training.epoch_stats_logger import EpochStatsLogger
from tfrs_debias.training.examination_logger import examination_logger
from tfrs_debias.training.lazy_adam import build_optimizer
from tfrs_debias.training.plateau_stopping import (
    PLATEAU_TOLERANCE,
    PlateauStopping,
)
from tfrs_debias.training.run_directory import RunDirectory
from tfrs_debias.training.run_state import RunState, completed_epochs
from tfrs_debias.training.slice_calibration import calibrate_on_slice
from tfrs_debias.training.train_result import TrainResult
from tfrs_debias.training.truth_ndcg_logger import TruthNDCGLogger
from tfrs_debias.training.weights_checkpoint import WeightsCheckpoint, save_model_weights

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


def auto_batch_size(rows: int) -> int:
    """The batch size used when none is given: about 1% of the rows as a power of two,
    within [256, 4096] — 4096 on large logs, 256 on a 7k-row ratings set (where 4096
    would be ~10 optimizer steps in 5 epochs)."""
    return int(np.clip(2 ** round(math.log2(max(rows, 1) / 100)), 256, 4096))


#: Optimizer steps a run without ``epochs`` is allowed (early stopping ends it sooner).
#: 500 stopped a 280k-row search-like log after 5 epochs with its examination curve 17%
#: off at the bottom rank; with room for 2000 steps early stopping ends it after ~11
#: epochs within 5% (``benchmarks/defaults.py``).
MIN_TRAINING_STEPS = 2000
MAX_AUTO_EPOCHS = 50


def auto_epochs(rows: int, batch_size: int) -> int:
    """Epochs used when none are given: at least 5, and enough for `MIN_TRAINING_STEPS`
    optimizer steps (at most `MAX_AUTO_EPOCHS`); early stopping on the validation loss
    ends a run sooner and keeps the best epoch's weights."""
    steps = max(1, math.ceil(rows / batch_size))
    return int(min(MAX_AUTO_EPOCHS, max(5, math.ceil(MIN_TRAINING_STEPS / steps))))


def train(
    train_files: str | Sequence[str],
    out_dir: str,
    config: EstimatorConfig,
    schema: ImpressionSchema,
    valid_files: str | Sequence[str] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    strategy: str | tf.distribute.Strategy = "default",
    early_stopping_patience: int = 2,
    validate: str = "sample",
    seed: int | None = 0,
    steps_per_epoch: int | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    overwrite: bool = False,
    keep_checkpoints: int | None = 2,
    random_slice_files: str | Sequence[str] | None = None,
) -> TrainResult:
    """Trains ``config.model`` on ``train_files`` and writes the run to ``out_dir``.

    Args:
      train_files: glob(s) of TFRecord impression logs.
      out_dir: the run directory (`RunDirectory`); a rerun with the same settings
        resumes a killed run from its ``backup/``.
      config: model and hyper-parameters; its tasks must be labels of ``schema``.
      schema: the impression schema of the files.
      valid_files: glob(s) for validation loss/AUC and early stopping. Without them a
        deterministic 10% of the training records (by a hash of their bytes) is held
        out for validation and early stopping.
      epochs: maximum epochs. Defaults to `auto_epochs` (at least 5).
      batch_size: global batch size (split over replicas). Defaults to
        `auto_batch_size` (256 to 4096 by the number of rows).
      learning_rate: Adam learning rate (Adam learned where Adagrad(0.1) did not, §5).
        Defaults to ``config.learning_rate``.
      strategy: a ``tf.distribute`` strategy or one of `STRATEGIES`.
      early_stopping_patience: epochs without val_loss improvement before stopping
        (best weights restored); 0 disables.
      validate: a pre-check before any pass over the data: ``"sample"`` the first 10k
        records of each file, ``"all"`` every record, ``"none"`` nothing. Whatever it
        is, every record is checked again as it is read (vocabulary pass and ``fit``):
        a malformed record or a value breaking a schema rule raises `InvalidDataError`
        naming file, record and field, before or during training, never silently.
      seed: shuffling and initialisation seed.
      steps_per_epoch: defaults to one pass over the training rows.
      verbose: Keras progress output.
      callbacks: more Keras callbacks.
      overwrite: replace a run already in ``out_dir`` (a finished one, or one with
        other settings), removing its files. Defaults to False, which raises
        `RunConflictError` for those.
      keep_checkpoints: per-epoch checkpoints kept: the last ``keep_checkpoints`` and
        the best epoch's (`CheckpointRetention`). Defaults to 2; None keeps every one.
      random_slice_files: glob(s) of a randomly exposed slice (``random_slice`` of
        ``tfrs-debias ratings --slice-fraction``). After training, the served logit is
        corrected by a `SliceCalibration` fitted on it (`calibrate_on_slice`; weights
        in ``metrics.json`` under ``slice_calibration``).

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
    schema = schema.for_tasks(config.tasks or None)
    config = config.with_tasks(schema.tasks)
    slice_paths = expand_files(random_slice_files) if random_slice_files else []
    if slice_paths:
        config = config.replace(slice_calibration=True)
    check_trainable(schema, config)  # a config the model refuses writes no run folder
    chief = is_chief(strategy)
    run = RunDirectory(out_dir)
    known = {"config": config.to_dict(), "schema": schema.to_dict()}
    if chief:  # fail before the long passes: unwritable folder, another run there
        run.precheck(known, overwrite=overwrite)
    if validate != "none":
        limit = None if validate == "all" else 10_000
        validate_files(
            train_paths + valid_paths + slice_paths, schema, max_records_per_file=limit
        ).raise_if_invalid()

    with located_errors(train_paths + valid_paths, schema):
        vocabularies, total_rows = build_vocabularies(train_paths, schema, config.min_id_count)
        if total_rows == 0:
            raise ValueError(f"no training rows in {train_paths}")
        valid_rows = count_rows(valid_paths, schema=schema) if valid_paths else 0
        held_out_rows = 0 if valid_paths else count_rows(train_paths, holdout="only")
    holdout = None
    if valid_paths:
        train_rows = total_rows
    else:
        valid_rows = held_out_rows
        holdout = "exclude" if 0 < valid_rows < total_rows else None
        train_rows = total_rows - valid_rows if holdout else total_rows
        valid_rows = valid_rows if holdout else 0
    batch_size = batch_size or auto_batch_size(train_rows)
    steps = steps_per_epoch or math.ceil(train_rows / batch_size)
    epochs = epochs or auto_epochs(train_rows, batch_size)
    identity = {
        **known,
        "training": {
            "train_files": train_paths,
            "valid_files": valid_paths,
            "random_slice_files": slice_paths,
            "epochs": epochs,
            "batch_size": batch_size,
            "steps_per_epoch": steps,
            "learning_rate": learning_rate or config.learning_rate,
            "early_stopping_patience": early_stopping_patience,
            "seed": seed,
            "num_replicas": strategy.num_replicas_in_sync,
        },
    }
    run.prepare(identity, overwrite=overwrite, chief=chief)
    # Non-chief workers write their (discarded) logs and checkpoints to a stable
    # folder of their own; every worker backs up to the run's backup/ (Keras keeps
    # the chief's and reads it on restart), so a restarted cluster resumes.
    resolver = getattr(strategy, "cluster_resolver", None)
    work_dir = out_dir
    if not chief:  # (a non-chief has a cluster resolver)
        assert resolver is not None
        work_dir = run.worker_dir(resolver.task_type, resolver.task_id)
    tf.io.gfile.makedirs(work_dir)
    resumed_epochs = completed_epochs(run.backup_dir)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = make_dataset(
        train_paths,
        schema,
        batch_size,
        seed=seed,
        num_epochs=None,
        holdout=holdout,
        skip_batches=resumed_epochs * steps,
    ).with_options(options)
    valid_ds = None
    if valid_rows:
        valid_ds = make_dataset(
            valid_paths or train_paths,
            schema,
            batch_size,
            shuffle=False,
            num_epochs=None,
            holdout=None if valid_paths else "only",
        ).with_options(options)

    with strategy.scope():
        model = build_estimator(schema, config, vocabularies)
        model.compile(
            optimizer=build_optimizer(
                config.optimizer,
                learning_rate or config.learning_rate,
                config.learning_rate_schedule,
                decay_steps=epochs * steps,
            )
        )
        # Built before fit, so BackupAndRestore can restore into existing variables.
        model(next(iter(make_dataset(train_paths, schema, 8, shuffle=False, check=False))))

    throughput = EpochStatsLogger(batch_size)
    checkpoints = os.path.join(work_dir, "checkpoints", "epoch-{epoch:02d}")
    # Loggers that add to the epoch logs run before TensorBoard, which then logs them.
    loggers: list = [throughput]
    folder = LogDirectory.of_files(train_paths)
    truth = folder.truth() if folder is not None else None
    if truth is not None and chief:
        loggers.append(TruthNDCGLogger(truth, schema))
    callbacks = [
        *loggers,
        keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"), update_freq="epoch"),
        WeightsCheckpoint(checkpoints),
        *callbacks,
    ]
    examination = examination_logger(model, train_paths, schema, vocabularies, work_dir)
    if examination is not None and chief:
        callbacks.append(examination)
    stopper = None
    if valid_ds is not None and early_stopping_patience > 0:
        stopper = PlateauStopping.for_validation(valid_rows, early_stopping_patience)
        callbacks.append(stopper)
    # RunState records an epoch before BackupAndRestore saves it (a kill between the
    # two leaves one epoch too many in the history, which a resume drops).
    state = RunState(
        os.path.join(work_dir, "backup", "history.json"),
        early_stopping=stopper,
        checkpoint_pattern=checkpoints,
    )
    callbacks.append(state)
    if keep_checkpoints is not None:
        callbacks.append(
            CheckpointRetention(
                checkpoints,
                lambda: state.history,
                keep_last=keep_checkpoints,
                tolerance=stopper.tolerance if stopper is not None else PLATEAU_TOLERANCE,
            )
        )
    callbacks.append(keras.callbacks.BackupAndRestore(run.backup_dir))
    # Every record is checked in the stream; a bad one stops the run, named.
    with located_errors(train_paths + valid_paths, schema):
        history = model.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps,
            validation_data=valid_ds,
            validation_steps=math.ceil(valid_rows / batch_size) if valid_ds is not None else None,
            callbacks=callbacks,
            verbose=verbose,
        )

    del history  # only the epochs this call ran; RunState has the whole run's
    hist = state.history
    epochs_run = len(hist.get("loss", []))
    # The weights kept are the plateau's last epoch when early stopping restored them.
    best = epochs_run - 1
    if stopper is not None and stopper.best_weights is not None and "val_loss" in hist:
        best = stopper.best_epoch  # the plateau's last epoch, resumed runs included
    metrics = {
        "model": config.model,
        "examination_curve": examination.curves if examination is not None else None,
        "epochs_run": epochs_run,
        "best_epoch": best + 1,
        "train_rows": train_rows,
        "valid_rows": valid_rows,
        "validation": "files" if valid_paths else ("holdout" if holdout else "none"),
        "batch_size": batch_size,
        "num_replicas": strategy.num_replicas_in_sync,
        "examples_per_sec": float(np.median(throughput.rates[1:] or throughput.rates)),
        "resumed_at_epoch": resumed_epochs or None,
        "final": {k: v[best] for k, v in hist.items() if len(v) > best},
    }
    if slice_paths:
        with located_errors(slice_paths, schema):
            metrics["slice_calibration"] = calibrate_on_slice(
                model, train_paths, slice_paths, schema
            )
    # Every worker saves (saving reads variables with collectives); the non-chief's
    # copy goes to its scratch folder, removed after.
    save_run(work_dir, model, metrics, hist)
    if not chief:
        remove_tree(work_dir)
    return TrainResult(out_dir, model, hist, metrics, chief)


def save_run(out_dir: str, model: BaseEstimator, metrics: dict, history: dict) -> None:
    """Writes config, schema, vocabularies, final weights and metrics; the weights go to
    a temporary folder renamed into place, so ``model/`` is never half-written."""
    tmp = os.path.join(out_dir, f".model.tmp-{os.getpid()}")
    remove_tree(tmp)
    save_model_weights(model, os.path.join(tmp, "weights"))  # no optimizer slots
    final = os.path.join(out_dir, "model")
    remove_tree(final)
    move_tree(tmp, final)
    write_json(os.path.join(out_dir, "config.json"), model.config.to_dict())
    write_json(os.path.join(out_dir, "vocabularies.json"), vocabulary_lists(model.vocabularies))
    model.schema.save(os.path.join(out_dir, "schema.json"))
    write_json(os.path.join(out_dir, "metrics.json"), {**metrics, "history": history})


def load_run(run_dir: str) -> BaseEstimator:
    """Rebuilds the trained estimator of a run directory with its final weights."""
    for name in ("config.json", "schema.json", "vocabularies.json", "model"):
        if not tf.io.gfile.exists(os.path.join(run_dir, name)):
            raise FileNotFoundError(f"{run_dir}: not a training run (no {name})")
    config = EstimatorConfig.from_dict(read_json(os.path.join(run_dir, "config.json")))
    vocabularies = read_json(os.path.join(run_dir, "vocabularies.json"))
    schema = ImpressionSchema.load(os.path.join(run_dir, "schema.json"))
    model = build_estimator(schema, config, vocabularies)
    model.load_weights(os.path.join(run_dir, "model", "weights")).expect_partial()
    return model


def train_from_files(
    train_files: str | Sequence[str],
    out_dir: str,
    config: EstimatorConfig | dict | None = None,
    schema_file: str | None = None,
    tasks: Sequence[str] | None = None,
    **kwargs: Any,
) -> TrainResult:
    """`train` with the schema resolved as the commands do (``schema_file``, else
    ``schema.json`` beside the files, else the default schema for ``tasks``) and the
    config given as an `EstimatorConfig` or a dict of its fields."""
    from tfrs_debias.schema import resolve_schema

    files = expand_files(train_files)
    schema = resolve_schema(schema_file, files, tasks=tasks)
    if not isinstance(config, EstimatorConfig):
        config = EstimatorConfig.from_dict(
            {**(config or {}), **({"tasks": list(tasks)} if tasks else {})}
        )
    return train(files, out_dir, config, schema, **kwargs)
