"""`run_tuning`: keras-tuner search over an estimator family, scored on the debiased ranker.

Objectives (``objective``):

* ``ndcg`` (the default when a truth file is found beside the validation data):
  NDCG@10 of the debiased path against true relevance on the truth's candidates.
  Note it selects on the same truth that `evaluate` reports on; for an untouched final
  figure, simulate a second dataset with another seed.
* ``random_ndcg``: NDCG@10 of the debiased scores against clicks per request on a
  randomized-traffic slice (``random_slice_files``: items shown in random order, so
  clicks there are not position-confounded); per user on logs without request ids.
* ``random_auc``: AUC of the debiased scores over the slice's rows (the default with a
  slice on logs without request ids, i.e. ratings). On simulated MNAR ratings with a
  5% slice (500 ratings) it ranked five propensity options as the random test's AUC
  did, where per-user NDCG@10 of ~10 items each did not (`docs/tuning.md`).
* ``val_loss`` (the default on plain logs): validation log-loss of the full, biased
  model. Caveat: it rewards fitting the logged clicks, bias included, so it does not
  measure debiasing.

The search is resumable: a re-run with the same ``out_dir`` continues it and does not
redo finished trials.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tfrs_debias.data.io.files import expand_files, write_json
from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import make_dataset, read_columns
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.data.io.validation import located_errors
from tfrs_debias.metrics.ground_truth import score_candidates, truth_ndcg
from tfrs_debias.metrics.ranking import ndcg_at_k, rank_auc
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training.data_pass import build_vocabularies, count_rows
from tfrs_debias.training.lazy_adam import build_optimizer
from tfrs_debias.training.plateau_stopping import PlateauStopping
from tfrs_debias.training.trainer import auto_batch_size, auto_epochs
from tfrs_debias.tuning.keras_tuner_compat import import_keras_tuner
from tfrs_debias.tuning.search_space import SearchSpace, config_fields

kt = import_keras_tuner()

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = ("auto", "ndcg", "random_ndcg", "random_auc", "val_loss")


def grouped_ndcg(groups: np.ndarray, scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean NDCG@k over groups (requests) with at least one positive label."""
    order = np.argsort(groups, kind="stable")
    groups, scores, labels = groups[order], scores[order], labels[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, len(groups)])
    width = int(sizes.max())
    pos = np.arange(len(groups)) - np.repeat(starts, sizes)
    row = np.repeat(np.arange(len(starts)), sizes)
    s = np.full((len(starts), width), -np.inf)
    y = np.zeros((len(starts), width))
    mask = np.zeros((len(starts), width), bool)
    s[row, pos], y[row, pos], mask[row, pos] = scores, labels, True
    values = ndcg_at_k(s, y, k, mask)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def truth_objective(truth: GroundTruth, task: str, k: int = 10) -> Callable:
    def objective(model) -> float:
        scores = score_candidates(model.debiased_logits, truth, model.schema)
        index = model.task_names.index(task)
        return float(np.nanmean(truth_ndcg(scores[..., index], truth, task, k)))

    return objective


def random_slice_objective(
    files: Sequence[str], schema: ImpressionSchema, task: str, k: int = 10, metric: str = "ndcg"
) -> Callable:
    """``metric="ndcg"``: NDCG@``k`` of the debiased scores over the randomized slice,
    per request (a ``request_id``), or per user on logs without one (a ratings slice:
    each user's randomly exposed items are one list); ``"auc"``: their AUC over all the
    slice's rows."""
    if metric not in ("ndcg", "auc"):
        raise ValueError(f"metric must be 'ndcg' or 'auc', got {metric!r}")
    group = (schema.request_id or schema.user_id).name
    data = read_columns(files, schema)
    feats = {f.name: data[f.name] for f in schema.relevance_features}
    positives = int(np.sum(np.asarray(data[task]) > 0))
    if positives == 0 or (metric == "auc" and positives == len(data[task])):
        raise ValueError(
            f"random slice {', '.join(files)}: {task!r} has {positives} positive labels in "
            f"{len(data[task])} rows; the {metric} objective needs positives"
            + (" and negatives" if metric == "auc" else "")
        )

    def objective(model) -> float:
        logits = model.debiased_logits(feats).numpy()[:, model.task_names.index(task)]
        if metric == "auc":
            return rank_auc(data[task], logits)
        return grouped_ndcg(data[group], logits, data[task], k)

    return objective


class EstimatorHyperModel(kt.HyperModel):  # type: ignore[name-defined,misc]
    """Builds an estimator from the searched hyper-parameters; ``fit`` returns the
    tuning objective computed on the debiased path when one is given."""

    def __init__(
        self,
        space: SearchSpace,
        schema: ImpressionSchema,
        vocabularies: dict,
        objective_name: str,
        objective_fn: Callable | None,
        decay_steps: int | None = None,
    ):
        super().__init__(name=f"{space.model}_hypermodel")
        self.decay_steps = decay_steps
        self.space = space
        self.schema = schema
        self.vocabularies = vocabularies
        self.objective_name = objective_name
        self.objective_fn = objective_fn

    def config(self, hp) -> EstimatorConfig:
        values = self.space.declare(hp)
        return EstimatorConfig.from_dict(config_fields(self.space.model, values, self.schema.tasks))

    def build(self, hp):
        config = self.config(hp)
        model = build_estimator(self.schema, config, self.vocabularies)
        model.compile(
            optimizer=build_optimizer(
                config.optimizer,
                config.learning_rate,
                config.learning_rate_schedule,
                decay_steps=self.decay_steps,
            )
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        history = model.fit(*args, **kwargs)
        if self.objective_fn is None:
            return history
        result = {self.objective_name: self.objective_fn(model)}
        if "val_loss" in history.history:  # the kept (best) epoch's, under early stopping
            result["val_loss"] = float(min(history.history["val_loss"]))
        return result


@dataclasses.dataclass
class TuneResult:
    rows: list[dict[str, Any]]
    best_config: EstimatorConfig
    objective: str
    direction: str
    tuner: Any


def run_tuning(
    train_files: str | Sequence[str],
    valid_files: str | Sequence[str],
    schema: ImpressionSchema,
    model: str,
    out_dir: str,
    tuner: str = "random",
    max_trials: int = 10,
    epochs: int | None = None,
    batch_size: int | None = None,
    space: SearchSpace | None = None,
    objective: str = "auto",
    truth_dir: str | None = None,
    random_slice_files: str | Sequence[str] | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
    early_stopping_patience: int = 2,
) -> TuneResult:
    """Searches ``space`` for ``model`` and writes ``out_dir/best_config.json``.

    Each trial trains as `train` does: ``batch_size`` and ``epochs`` default to
    `auto_batch_size` / `auto_epochs` of the training rows (a 13k-row ratings set gets
    batch 256, not 4096: three epochs of 4096 were ~10 optimizer steps, too few for
    trials to differ), and early stopping on the validation loss
    (``early_stopping_patience`` epochs, 0: off) ends a trial and keeps its best epoch's
    weights before the objective is measured.

    Returns the trials sorted by objective (best first) and the best config, which
    ``tfrs-debias train --config`` accepts unchanged.
    """
    if tuner not in TUNERS:
        raise ValueError(f"tuner must be one of {TUNERS}, got {tuner!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    space = (space or SearchSpace.default(model)).for_schema(schema)
    train_paths, valid_paths = expand_files(train_files), expand_files(valid_files)
    task = schema.tasks[0]
    if truth_dir is None:
        beside = LogDirectory.of_files(valid_paths)
        truth_dir = beside.path if beside is not None and beside.has_truth else None
    if objective == "auto":
        by_request = "random_ndcg" if schema.request_id is not None else "random_auc"
        objective = "ndcg" if truth_dir else by_request if random_slice_files else "val_loss"
    objective_fn, name, direction = None, "val_loss", "min"
    if objective == "ndcg":
        if not truth_dir:
            raise ValueError(
                "objective ndcg needs a truth file (truth.npz beside the "
                "validation data, or truth_dir)"
            )
        objective_fn, name, direction = (
            truth_objective(GroundTruth.load(truth_dir), task),
            "ndcg_at_10",
            "max",
        )
    elif objective in ("random_ndcg", "random_auc"):
        if not random_slice_files:
            raise ValueError(f"objective {objective} needs random_slice_files")
        metric = objective.removeprefix("random_")
        objective_fn = random_slice_objective(
            expand_files(random_slice_files), schema, task, metric=metric
        )
        name, direction = ("random_ndcg_at_10" if metric == "ndcg" else "random_auc"), "max"

    # Both passes check every record, so bad data stops here, named, not in a trial.
    with located_errors(train_paths + valid_paths, schema):
        vocabularies, rows = build_vocabularies(train_paths, schema)
        valid_rows = count_rows(valid_paths, schema=schema)
    batch_size = batch_size or auto_batch_size(rows)
    epochs = epochs or auto_epochs(rows, batch_size)
    steps = steps_per_epoch or math.ceil(rows / batch_size)
    callbacks = []
    if early_stopping_patience > 0:
        callbacks.append(PlateauStopping.for_validation(valid_rows, early_stopping_patience))
    hypermodel = EstimatorHyperModel(
        space, schema, vocabularies, name, objective_fn, decay_steps=epochs * steps
    )
    common = dict(
        objective=kt.Objective(name, direction),
        seed=seed,
        directory=out_dir,
        project_name=model,
        overwrite=False,
        max_consecutive_failed_trials=2,
    )
    if tuner == "random":
        search = kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    elif tuner == "bayesian":
        search = kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    else:
        search = kt.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)
    search.search(
        make_dataset(train_paths, schema, batch_size, seed=seed, num_epochs=None),
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=make_dataset(
            valid_paths, schema, batch_size, shuffle=False, num_epochs=None
        ),
        validation_steps=math.ceil(valid_rows / batch_size),
        callbacks=callbacks,
        verbose=verbose,
    )
    trials = [t for t in search.oracle.trials.values() if t.score is not None]
    trials.sort(key=lambda t: t.score, reverse=direction == "max")
    if not trials:
        raise RuntimeError(f"no trial finished; see the logs under {out_dir}")
    table = [
        {"trial": t.trial_id, name: float(t.score), **t.hyperparameters.values} for t in trials
    ]
    best = hypermodel.config(trials[0].hyperparameters)
    write_json(os.path.join(out_dir, "best_config.json"), best.to_dict())
    write_json(
        os.path.join(out_dir, "results.json"),
        {"objective": name, "direction": direction, "trials": table},
    )
    return TuneResult(table, best, name, direction, search)


def format_results(result: TuneResult, limit: int = 20) -> str:
    """A text table of the trials, best first."""
    if not result.rows:
        return "no trials"
    keys = [k for k in result.rows[0] if k not in ("trial", result.objective)]
    head = f"{'trial':<8}{result.objective:>16}  " + "  ".join(keys)
    lines = [head]
    for r in result.rows[:limit]:
        vals = "  ".join(f"{r.get(k)}" for k in keys)
        lines.append(f"{r['trial']:<8}{r[result.objective]:>16.4f}  {vals}")
    return "\n".join(lines)
