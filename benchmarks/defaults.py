"""How the defaults were chosen: measured on more than the default simulator.

Settings (all generated here, nothing downloaded):

* ``default``: the default simulator (600k impressions, 3 devices);
* ``search``: the search-like preset (since 2026-12 shaped after a real search log; see
  docs/real_logs.md; earlier 300 queries x their own 10 documents, 35k
  sessions, one surface): a position-based-click-model log, where PBM fitted by EM is
  the classical reference;
* ``ratings``: a 7k-row explicit-ratings set with a random test (290 users x 24
  self-selected items in training, 16 random items each in test), the size of the
  smaller public debiasing collections.

For the bias-feature dropout it trains the default ``position_debiased`` with each value
and prints examination-curve error vs the truth (mean and max per position and device),
NDCG@10 vs truth, and on ``search`` the held-out click perplexity of ours vs PBM. For the
batch size / epochs it trains on ``ratings`` with the automatic choice, with batch 4096 x
5 epochs, and with batch 256 x 10 epochs (the hand-tuned figure) and prints test AUC.

Usage: python benchmarks/defaults.py [--out defaults_output] [--settings default,search,ratings]
       [--dropouts 0,0.1] [--optimizers lazy_adam,adam]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from tfrs_debias.click_models import ClickLog, PositionBasedModel, perplexity
from tfrs_debias.data import ImpressionSimulator, LogDirectory
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.data.sources.ratings import ratings_dataset
from tfrs_debias.data.sources.simulator import simulator_config
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.metrics.ground_truth import apply_batched
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import train


def simulate(out: str, preset: str) -> LogDirectory:
    folder = LogDirectory(os.path.join(out, f"data_{preset}"))
    if not folder.has_schema:
        ImpressionSimulator(simulator_config(preset)).write(folder.path, progress=False)
    return folder


def mnar_ratings(out: str, seed: int = 0) -> LogDirectory:
    """A Coat-sized MNAR ratings set: ratings 1..5 from a latent model; users rate items
    they like more often (self-selection) and popular items more often."""
    folder = LogDirectory(os.path.join(out, "data_ratings"))
    if folder.has_schema:
        return folder
    rng = np.random.default_rng(seed)
    n_users, n_items, d = 290, 300, 8
    u, v = rng.normal(size=(n_users, d)), rng.normal(size=(n_items, d))
    bias = rng.normal(0, 0.7, n_items)
    score = u @ v.T / np.sqrt(d) + bias
    ratings = np.clip(np.round(3 + 1.2 * score + rng.normal(0, 0.6, score.shape)), 1, 5)
    pop = rng.normal(0, 1, n_items)
    os.makedirs(out, exist_ok=True)
    train_path, test_path = os.path.join(out, "mnar_train.txt"), os.path.join(out, "mnar_test.txt")
    with open(train_path, "w") as tr, open(test_path, "w") as te:
        for user in range(n_users):
            w = np.exp(0.9 * (ratings[user] - 3) + 0.8 * pop)
            picked = rng.choice(n_items, 24, replace=False, p=w / w.sum())
            rest = np.setdiff1d(np.arange(n_items), picked)
            for i in picked:
                tr.write(f"{user} {i} {ratings[user, i]:.0f}\n")
            for i in rng.choice(rest, 16, replace=False):
                te.write(f"{user} {i} {ratings[user, i]:.0f}\n")
    ratings_dataset(train_path, test_path, folder.path, seed=seed, progress=False)
    return folder


def dropout_runs(folder: LogDirectory, out: str, dropouts, epochs, optimizer) -> list[dict]:
    schema = folder.schema()
    truth = folder.truth()
    evaluator = Evaluator(truth)
    rows = []
    for p in dropouts:
        run = train(
            folder.require("train"),
            os.path.join(out, f"run_{os.path.basename(folder.path)}_bfd{p}_{optimizer}"),
            EstimatorConfig(model="position_debiased", bias_feature_dropout=p, optimizer=optimizer),
            schema,
            valid_files=folder.require("valid"),
            epochs=epochs or None,
            verbose=0,
            validate="none",
        )
        scorer = Scorer.from_estimator(run.model)
        exam = evaluator.examination(scorer)
        ndcg = evaluator.ranking(scorer)["ndcg"]["click"]["@10"]
        row = {
            "data": os.path.basename(folder.path),
            "bias_feature_dropout": p,
            "optimizer": optimizer,
            "epochs_run": run.metrics["epochs_run"],
            "exam_mean_error": exam["mean_error"],
            "exam_max_error": exam["max_error"],
            "ndcg@10": ndcg,
        }
        if "search" in folder.path:
            row.update(search_perplexity(folder, scorer))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _click_log(columns):
    return ClickLog.from_columns(columns, "user_id", "item_id", "position", "click", "device")


def search_perplexity(folder: LogDirectory, scorer: Scorer) -> dict:
    schema = folder.schema()
    train_cols = read_columns(folder.require("train"), schema)
    test_cols = read_columns(folder.require("test"), schema)
    pbm = PositionBasedModel().fit(_click_log(train_cols))
    test_log = _click_log(test_cols)
    feats = {k: v for k, v in test_cols.items() if k in schema.names}
    ours = apply_batched(scorer.biased, feats)[:, 0]
    pbm_curve = pbm.examination()[0]
    true = folder.truth().examination[0] / folder.truth().examination[0, 0]
    return {
        "perplexity_ours": perplexity(test_log.clicks, ours, test_log.ranks),
        "perplexity_pbm": perplexity(test_log.clicks, pbm.predict(test_log), test_log.ranks),
        "pbm_exam_mean_error": float(np.mean(np.abs(pbm_curve - true) / true)),
    }


def batch_runs(folder: LogDirectory, out: str, optimizer: str) -> list[dict]:
    schema = folder.schema()
    evaluator = Evaluator(folder.truth(), ks=(5,))
    rows = []
    for name, batch, epochs in (("auto", None, None), ("4096x5", 4096, 5), ("256x10", 256, 10)):
        run = train(
            folder.require("train"),
            os.path.join(out, f"run_ratings_{name}_{optimizer}"),
            EstimatorConfig(model="position_debiased", optimizer=optimizer),
            schema,
            valid_files=folder.require("valid"),
            epochs=epochs,
            batch_size=batch,
            verbose=0,
            validate="none",
        )
        res = evaluator.evaluate(Scorer.from_estimator(run.model), folder.require("test"), schema)
        row = {
            "data": "ratings",
            "setting": name,
            "optimizer": optimizer,
            "batch_size": run.metrics["batch_size"],
            "epochs_run": run.metrics["epochs_run"],
            "test_auc": res["logged"]["tasks"]["click"]["auc"],
            "ndcg@5": res["ranking"]["ndcg"]["click"]["@5"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="defaults_output", help="data, runs and results")
    parser.add_argument("--settings", default="default,search,ratings", help="which settings")
    parser.add_argument("--dropouts", default="0,0.1", help="bias_feature_dropout values")
    parser.add_argument(
        "--epochs", type=int, default=0, help="epochs for the dropout runs (0: train's default)"
    )
    parser.add_argument("--optimizers", default="lazy_adam", help="optimizer names to compare")
    args = parser.parse_args(argv)
    settings = args.settings.split(",")
    dropouts = [float(p) for p in args.dropouts.split(",")]
    rows = []
    for optimizer in args.optimizers.split(","):
        for preset in ("default", "search"):
            if preset in settings:
                folder = simulate(args.out, preset)
                rows += dropout_runs(folder, args.out, dropouts, args.epochs, optimizer)
        if "ratings" in settings:
            rows += batch_runs(mnar_ratings(args.out), args.out, optimizer)
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
