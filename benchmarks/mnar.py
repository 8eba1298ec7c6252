"""Propensity-weighted training on missing-not-at-random ratings, in one run.

`MnarRatingsSimulator` (self-selection on the rating, popular items and active users
seen more) writes a biased training set, a randomly exposed test set and a 5% random
slice of it (which calibrates the naive-Bayes factor of the logged propensities).
The "+ slice calibration" variants also give `train` the random slice
(``random_slice_files``), which corrects their served logit with weights fitted on it.
Each variant trains with the library's automatic batch size and epochs and is scored
with its served (debiased) probabilities on the random test: one global AUC and
per-user NDCG@5 (binary gain, users with a positive), overall and per user-activity /
item-popularity bucket, each with a paired bootstrap 95% interval of the difference to
the naive model (the test's users resampled; per bucket, of the relative change). A
model trained on fully random data of the same size is the ceiling.

Prints the table and writes it as ``OUT/mnar.png`` (AUC per variant, and the NDCG@5
difference to naive with its interval) beside ``OUT/mnar.json``.

Usage: python benchmarks/mnar.py [--seed 0] [--users 1000] [--items 500]
       [--rating-effect 0.8] [--popularity-effect 1.0] [--out mnar_output]
       [--propensity-clip 0.05]
       [--variants "factorized,factorized + slice calib."]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np

from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.data.sources.mnar_ratings import MnarRatingsConfig, MnarRatingsSimulator
from tfrs_debias.data.sources.ratings import write_ratings_dataset
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.metrics.buckets import item_bucket, user_bucket
from tfrs_debias.metrics.ground_truth import apply_batched
from tfrs_debias.metrics.ranking import ndcg_at_k, rank_auc
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import train

NAIVE = "naive (multi_task)"
VARIANTS = {
    NAIVE: {"model": "multi_task"},
    "IPS": {"model": "multi_task", "propensity_weighting": "ips"},
    "SNIPS": {"model": "multi_task", "propensity_weighting": "snips"},
    "SNIPS (true propensities)": {"model": "multi_task", "propensity_weighting": "snips"},
    "DR": {"model": "multi_task", "propensity_weighting": "dr"},
    "DR (true propensities)": {"model": "multi_task", "propensity_weighting": "dr"},
    "DR + uniform pairs": {
        "model": "multi_task",
        "propensity_weighting": "dr",
        "dr_pairs": "uniform",
    },
    "DR (true propensities) + uniform pairs": {
        "model": "multi_task",
        "propensity_weighting": "dr",
        "dr_pairs": "uniform",
    },
    "factorized": {"model": "factorized"},
    "factorized + SNIPS": {"model": "factorized", "propensity_weighting": "snips"},
    "anchored_factorized": {"model": "anchored_factorized"},
    "naive + slice calibration": {"model": "multi_task", "slice": True},
    "factorized + slice calib.": {"model": "factorized", "slice": True},
    "DR + slice calibration": {"model": "multi_task", "propensity_weighting": "dr", "slice": True},
}


def paired_interval(values: np.ndarray, base: np.ndarray, seed: int = 0) -> tuple[float, float]:
    keep = ~np.isnan(values) & ~np.isnan(base)
    diff = values[keep] - base[keep]
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(1000)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def auc_interval(
    labels: np.ndarray,
    scores: np.ndarray,
    base: np.ndarray,
    groups: np.ndarray,
    seed: int = 0,
    draws: int = 1000,
) -> tuple[float, float]:
    """Paired bootstrap 95% interval of ``AUC(scores) - AUC(base)`` on the same rows,
    resampling ``groups`` (the test's users) with replacement, so a user's rows stay
    together."""
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(inverse.max() + 2))
    members = [order[starts[g] : starts[g + 1]] for g in range(len(starts) - 1)]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(draws):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        y = labels[rows]
        if y.min() == y.max():
            continue
        diffs.append(rank_auc(y, scores[rows]) - rank_auc(y, base[rows]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def relative_interval(
    values: np.ndarray, base: np.ndarray, seed: int = 0, draws: int = 1000
) -> tuple[float, float, float]:
    """``mean(values) / mean(base) - 1`` over the users where both are defined, with a
    paired bootstrap 95% interval (users resampled with replacement): a bucket's
    relative NDCG change as the table prints it."""
    keep = ~np.isnan(values) & ~np.isnan(base)
    ours, theirs = values[keep], base[keep]
    if not len(ours) or theirs.mean() <= 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ours), (draws, len(ours)))
    ratios = ours[picks].mean(axis=1) / np.maximum(theirs[picks].mean(axis=1), 1e-12) - 1
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(ours.mean() / theirs.mean() - 1), float(low), float(high)


def user_thresholds(folder: LogDirectory, quantile: float = 0.9) -> tuple[int, int]:
    """``(10, q)``: "new" users keep the evaluator's definition (at most 10 training
    ratings); "power" users are those above the ``quantile`` of the test users'
    training ratings (the evaluator's fixed 100 leaves that bucket empty on ~13 ratings
    a user)."""
    counts = folder.truth().user_train_impressions
    return 10, max(int(np.quantile(counts, quantile)), 11)


def evaluate(model, folder: LogDirectory, thresholds: tuple[int, int] = (10, 100)) -> dict:
    scorer = Scorer.from_estimator(model)
    truth = folder.truth()
    evaluator = Evaluator(truth=truth, ks=(5,), user_thresholds=thresholds)
    scores = evaluator.truth_scores(scorer)
    ranking = evaluator.ranking(scorer, scores)
    per_user = np.array(
        [np.nan if v is None else v for v in ranking["ndcg_per_user"]["click"]["@5"]]
    )
    # Per-user NDCG@5 of each bucket (nan where a user has none), for the intervals:
    # user buckets keep a user's whole list (the evaluator's per-user figures), item
    # buckets a user's candidates in them (the evaluator returns only their means).
    users = user_bucket(truth.user_train_impressions, thresholds)
    items = item_bucket(truth.candidate_train_impressions, evaluator.item_quantiles, truth.mask)
    buckets = {b: np.where(users == b, per_user, np.nan) for b in ("new", "power")}
    s, rel = scores[..., scorer.tasks.index("click")], truth.relevance["click"]
    for b in ("tail", "head"):
        buckets[b] = ndcg_at_k(s, rel, 5, truth.mask & (items == b))
    test = read_columns(folder.require("test"), folder.schema())
    served = apply_batched(scorer.debiased, test)[:, 0]
    return {
        "auc": rank_auc(test["click"], served),
        "labels": test["click"],
        "served": served,
        "test_users": test["user_id"],
        "ndcg": ranking["ndcg"]["click"]["@5"],
        "per_user": per_user,
        "users": ranking["ndcg_by_user_bucket"]["click"],
        "items": ranking["ndcg_by_item_bucket"]["click"],
        "bucket_per_user": buckets,
    }


def plot(rows: list[dict], path: str, title: str) -> None:
    """Two panels: AUC per variant (the random-data ceiling dashed), and the NDCG@5
    difference to naive with its paired bootstrap 95% interval."""
    from matplotlib.figure import Figure

    names = [r["variant"] for r in rows]
    y = np.arange(len(rows))[::-1]
    fig = Figure(figsize=(10, 0.35 * len(rows) + 1.5))
    left, right = fig.subplots(1, 2, sharey=True)
    left.barh(y, [r["auc"] for r in rows], color="tab:blue")
    ceiling = [r["auc"] for r in rows if r["variant"].startswith("ceiling")]
    if ceiling:
        left.axvline(ceiling[0], color="k", linestyle="--", linewidth=1)
    left.set_xlim(min(r["auc"] for r in rows) - 0.02, max(r["auc"] for r in rows) + 0.01)
    left.set_yticks(y, names, fontsize=8)
    left.set_xlabel("AUC on the random test")
    delta = np.array([r["ndcg_delta"] for r in rows])
    err = np.array([[r["ndcg_delta"] - r["low"], r["high"] - r["ndcg_delta"]] for r in rows]).T
    right.errorbar(delta, y, xerr=err, fmt="o", color="tab:orange", capsize=3)
    right.axvline(0, color="k", linewidth=1)
    right.set_xlabel("NDCG@5 − naive (95% CI)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--rating-effect", type=float, default=MnarRatingsConfig.rating_effect)
    p.add_argument("--popularity-effect", type=float, default=MnarRatingsConfig.popularity_effect)
    p.add_argument("--out", default="mnar_output", help="where mnar.png and mnar.json go")
    p.add_argument(
        "--propensity-clip",
        type=float,
        default=None,
        help="propensity_clip of the propensity-weighted variants (default: the library's)",
    )
    p.add_argument(
        "--variants",
        default="",
        help="comma-separated variant names to run (naive and the ceiling always run); "
        f"default all: {', '.join(VARIANTS)}",
    )
    args = p.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.propensity_clip is not None and not 0 < args.propensity_clip <= 1:
        p.error(f"--propensity-clip must be in (0, 1], got {args.propensity_clip}")
    config = MnarRatingsConfig(
        num_users=args.users,
        num_items=args.items,
        seed=args.seed,
        rating_effect=args.rating_effect,
        popularity_effect=args.popularity_effect,
    )
    sim = MnarRatingsSimulator(config)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "mnar")
        sim.write(data, slice_fraction=0.05, progress=False)
        folder = LogDirectory(data)
        schema = folder.schema()
        train_rows = len(read_columns(folder.require("train"), schema)["click"])
        print(f"MNAR ratings: {args.users} users x {args.items} items, {train_rows} biased rows")
        thresholds = user_thresholds(folder)
        print(
            f"user buckets by training ratings: new <= {thresholds[0]}, power > "
            f"{thresholds[1]} (the 90th percentile); items: tail / head at the 50th / 90th "
            "percentile of training ratings"
        )
        # The ceiling: the same number of rows, exposed at random (no selection bias).
        ratings = sim.ratings()
        rng = np.random.default_rng(args.seed + 7)
        ru = rng.integers(0, args.users, train_rows)
        ri = rng.integers(0, args.items, train_rows)
        _, test, _ = sim.simulate()
        random_dir = os.path.join(tmp, "random")
        write_ratings_dataset((ru, ri, ratings[ru, ri]), test, random_dir, progress=False)
        true_dir = os.path.join(tmp, "true_propensities")
        sim.write(true_dir, slice_fraction=0.05, progress=False, true_propensities=True)
        variants = {k: v for k, v in VARIANTS.items() if not chosen or k in chosen or k == NAIVE}
        runs = {**variants, "ceiling: random data": {"model": "multi_task"}}
        for name, fields in runs.items():
            source = LogDirectory(
                random_dir if name.startswith("ceiling") else true_dir if "true" in name else data
            )
            fields = dict(fields)
            if args.propensity_clip is not None and "propensity_weighting" in fields:
                fields["propensity_clip"] = args.propensity_clip
            slice_files = source.require("random_slice") if fields.pop("slice", False) else None
            result = train(
                source.require("train"),
                os.path.join(tmp, "runs", name.replace(" ", "_").replace(".", "")),
                EstimatorConfig(**fields),
                source.schema(),
                valid_files=source.require("valid"),
                verbose=0,
                seed=args.seed,
                random_slice_files=slice_files,
            )
            results[name] = evaluate(result.model, folder, thresholds)
            print(f"  trained {name}: {result.metrics['epochs_run']} epochs", flush=True)
    base = results[NAIVE]
    header = f"{'variant':<27}{'AUC':>7}{'vs naive [95% CI]':>28}{'NDCG@5':>8}"
    header += f"{'vs naive [95% CI]':>32}{'new':>7}{'power':>7}{'tail':>7}{'head':>7}"
    print(header)
    rows = []
    for name, r in results.items():
        low, high = paired_interval(r["per_user"], base["per_user"])
        auc_low, auc_high = auc_interval(r["labels"], r["served"], base["served"], r["test_users"])
        rows.append(
            {
                "variant": name,
                "auc": r["auc"],
                "auc_delta": r["auc"] - base["auc"],
                "auc_low": auc_low,
                "auc_high": auc_high,
                "ndcg": r["ndcg"],
                "ndcg_delta": r["ndcg"] - base["ndcg"],
                "low": low,
                "high": high,
            }
        )
        row = rows[-1]
        auc_delta = f"{row['auc_delta']:+.3f} [{auc_low:+.3f}, {auc_high:+.3f}]"
        delta = f"{row['ndcg_delta']:+.4f} [{low:+.4f}, {high:+.4f}]"
        buckets = [r["users"]["new"], r["users"]["power"], r["items"]["tail"], r["items"]["head"]]
        cells = "".join(
            f"{b['@5'] if b['@5'] is not None else float('nan'):>7.3f}" for b in buckets
        )
        print(f"{name:<27}{r['auc']:>7.4f}{auc_delta:>28}{r['ndcg']:>8.4f}{delta:>32}{cells}")
    print("\nNDCG@5 per bucket relative to naive, paired bootstrap 95% interval over users")
    print("(target for the factorized models: new users and tail items >= +5%, power users")
    print("down < 1%)")
    print(f"{'variant':<27}" + "".join(f"{b:>23}" for b in ("new", "power", "tail", "head")))
    by_name = {row["variant"]: row for row in rows}
    for name, r in results.items():
        if name == NAIVE:
            continue
        cells = ""
        for key in ("new", "power", "tail", "head"):
            mid, low, high = relative_interval(
                r["bucket_per_user"][key], base["bucket_per_user"][key]
            )
            by_name[name].setdefault("buckets", {})[key] = {
                "relative": mid,
                "low": low,
                "high": high,
            }
            cells += f"{mid:>+7.1%} [{low:+.1%}, {high:+.1%}]".rjust(23)
        print(f"{name:<27}{cells}")
    os.makedirs(args.out, exist_ok=True)
    title = (
        f"MNAR ratings: {args.users} users x {args.items} items, self-selection "
        f"{args.rating_effect}, seed {args.seed}"
    )
    plot(rows, os.path.join(args.out, "mnar.png"), title)
    with open(os.path.join(args.out, "mnar.json"), "w") as fh:
        json.dump({"title": title, "rows": rows}, fh, indent=2)
    print(f"plot: {os.path.join(args.out, 'mnar.png')}")
    ceiling = results["ceiling: random data"]
    others = [n for n in variants if n != NAIVE]
    best = max(others, key=lambda n: results[n]["auc"]) if others else NAIVE
    gap = ceiling["auc"] - base["auc"]
    if gap > 0.005:
        share = (results[best]["auc"] - base["auc"]) / gap
        print(f"best AUC: {best}, {share:.0%} of the naive -> random-data AUC gap")
    else:
        print("naive -> random-data AUC gap too small to measure")


if __name__ == "__main__":
    main()
