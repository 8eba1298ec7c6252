"""Explicit-feedback data with an unbiased test set, as debiasing research evaluates on.

A training file collected by the normal (biased) policy and a test file of ratings on
randomly assigned items, each of ``user item rating`` triples separated by whitespace or
commas (the layout of the public collections used in debiasing papers). The raw ids are
kept as ``user_id`` / ``item_id``; the label ``click`` is ``rating >= threshold``. The
schema has no position or device: every estimator trains without bias features. The
test file becomes ``test-*`` logs (AUC) and the truth's candidates (NDCG per user on
the random test).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tfrs_debias.data.io.files import absolute, is_file, text_lines
from tfrs_debias.data.io.log_dataset import write_log_dataset
from tfrs_debias.data.io.truth import GroundTruth, count_lookup
from tfrs_debias.schema import Feature, ImpressionSchema

_SPLIT = re.compile(r"[\s,]+")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT64 = (-(2**63), 2**63 - 1)


def _is_header(parts: list[str]) -> bool:
    """A header names its columns: ``user item rating``, ``userId,movieId,rating``."""
    return all(_NAME.match(p) for p in parts[:3])


def read_triples(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, ratings)`` from a ``user item rating`` file; errors name the line."""
    if not is_file(path):
        raise FileNotFoundError(f"{path}: ratings file not found")
    users, items, ratings = [], [], []
    for lineno, line in enumerate(text_lines(path), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = _SPLIT.split(line)
        if len(parts) < 3:
            raise ValueError(
                f"{path}: line {lineno}: expected 'user item rating', got {line[:60]!r}"
            )
        try:
            u, i, r = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            if lineno == 1 and _is_header(parts):
                continue
            raise ValueError(
                f"{path}: line {lineno}: non-numeric field in {line[:60]!r} "
                "(expected integer user and item ids and a numeric rating)"
            ) from None
        for name, value in (("user id", u), ("item id", i)):
            if not _INT64[0] <= value <= _INT64[1]:
                raise ValueError(f"{path}: line {lineno}: {name} {value} does not fit in int64")
        if not np.isfinite(r):
            raise ValueError(f"{path}: line {lineno}: rating is not finite")
        users.append(u)
        items.append(i)
        ratings.append(r)
    if not users:
        raise ValueError(f"{path}: no ratings")
    return (
        np.asarray(users, np.int64),
        np.asarray(items, np.int64),
        np.asarray(ratings, np.float64),
    )


def estimate_propensities(
    items: np.ndarray,
    labels: np.ndarray,
    slice_labels: np.ndarray | None = None,
    power: float = 0.5,
) -> tuple[np.ndarray, str]:
    """Observation propensities of the logged (biased) rows, for IPS/SNIPS training.

    * Item popularity (Yang et al., RecSys 2018): ``p_i ∝ (n_i / max n)^power`` with
      ``n_i`` the item's observed rows — popular items are more likely to be observed.
    * With a randomized slice (labels of randomly exposed pairs), times the naive-Bayes
      label factor (Schnabel et al., ICML 2016): ``P(O=1 | y) ∝ P(y | O=1) / P(y)``,
      ``P(y)`` from the slice — users rate what they like more often (MNAR).

    Returns ``(propensities in (0, 1] scaled so the largest is 1, a description)``.
    """
    ids, inverse, counts = np.unique(items, return_inverse=True, return_counts=True)
    score = (counts[inverse] / counts.max()) ** power
    method = f"item popularity^{power:g}"
    if slice_labels is not None and len(slice_labels):
        labels = np.asarray(labels, np.int64)
        observed = np.bincount(labels, minlength=2) / len(labels)
        randomized = np.bincount(np.asarray(slice_labels, np.int64), minlength=2)
        randomized = (randomized + 1) / (randomized.sum() + 2)  # Laplace: no empty class
        score = score * (observed / randomized)[labels]
        method += f" x naive-Bayes label factor ({len(slice_labels)} slice rows)"
    return (score / score.max()).astype(np.float32), method


def ratings_dataset(
    train_path: str, test_path: str, out_dir: str, **options: Any
) -> dict[str, list[str]]:
    """Reads the biased (``train_path``) and random (``test_path``) rating files and
    writes train/valid, test, schema and truth with `write_ratings_dataset`, whose
    keyword arguments ``options`` are (threshold, fractions, seed, overwrite, ...)."""
    metadata = {
        "source": "ratings",
        "train": absolute(train_path),
        "test": absolute(test_path),
        **options.pop("metadata", {}),
    }
    return write_ratings_dataset(
        read_triples(train_path), read_triples(test_path), out_dir, metadata=metadata, **options
    )


def write_ratings_dataset(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    out_dir: str,
    positive_threshold: float = 4.0,
    valid_fraction: float = 0.1,
    slice_fraction: float = 0.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
    propensities: np.ndarray | None = None,
) -> dict[str, list[str]]:
    """Writes ``(users, items, ratings)`` of the biased policy as train/valid and of the
    random exposure as test (logs and truth), with ``click = rating >= threshold``.

    ``slice_fraction`` of the random test's users (by a seeded draw) become the
    ``random_slice`` split instead (the papers' protocol uses 5%): a randomized slice
    for tuning and for calibrating propensities. Every row carries a ``propensity``:
    `estimate_propensities` for train/valid (or the given ``propensities`` of the
    training triples, e.g. a simulator's true ones), 1 for the random test and slice.
    """
    schema = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False).replace(
        add=[Feature("propensity", "float32", "propensity")]
    )
    tu, ti, tr = train
    eu, ei, er = test
    rng = np.random.default_rng(seed)
    valid = rng.random(len(tu)) < valid_fraction
    slice_users = np.unique(eu)
    slice_users = slice_users[rng.random(len(slice_users)) < slice_fraction]
    in_slice = np.isin(eu, slice_users)
    click = (tr >= positive_threshold).astype(np.int64)
    slice_click = (er[in_slice] >= positive_threshold).astype(np.int64)
    if propensities is not None:
        propensity = np.asarray(propensities, np.float32)
        method = "given (true observation probabilities)"
    else:
        slice_labels = slice_click if in_slice.any() else None
        propensity, method = estimate_propensities(ti, click, slice_labels)

    def columns(u, i, r, p):
        return {
            "user_id": u,
            "item_id": i,
            "click": (r >= positive_threshold).astype(np.int64),
            "propensity": p,
        }

    ones = np.ones(len(eu), np.float32)
    splits = {
        "train": columns(tu[~valid], ti[~valid], tr[~valid], propensity[~valid]),
        "valid": columns(tu[valid], ti[valid], tr[valid], propensity[valid]),
        "test": columns(eu[~in_slice], ei[~in_slice], er[~in_slice], ones[~in_slice]),
    }
    if in_slice.any():
        splits["random_slice"] = columns(eu[in_slice], ei[in_slice], er[in_slice], ones[in_slice])
    truth = _truth(
        eu[~in_slice],
        ei[~in_slice],
        er[~in_slice],
        splits["train"],
        positive_threshold,
        {**(metadata or {}), "positive_threshold": positive_threshold, "propensity": method},
    )
    return write_log_dataset(
        out_dir,
        schema,
        splits,
        truth,
        num_shards=1,
        compression="",
        overwrite=overwrite,
        progress=progress,
    )


def ratings_summary(data_dir: str) -> str:
    """One line per split (rows, users, items, positive rate) and the users of the test
    truth without a positive (NDCG is undefined for them)."""
    from tfrs_debias.data.io.log_directory import LogDirectory
    from tfrs_debias.data.io.reader import read_columns

    folder = LogDirectory(data_dir)
    schema = folder.schema()
    lines = []
    for split in folder.splits:
        cols = read_columns(folder.files(split), schema)
        if not cols:
            continue
        lines.append(
            f"{split:<13}{len(cols['click']):>9,} rows {len(np.unique(cols['user_id'])):>7,} "
            f"users {len(np.unique(cols['item_id'])):>7,} items  "
            f"positive rate {cols['click'].mean():.3f}"
        )
    truth = folder.truth()
    if truth is not None:
        rel = truth.relevance["click"]
        none = int((np.nansum(rel, axis=1) == 0).sum())
        lines.append(f"test users without a positive: {none} of {len(truth.users)}")
        lines.append(f"propensities: {truth.metadata.get('propensity', '-')}")
    return "\n".join(lines)


def _truth(users, items, ratings, train, threshold, metadata) -> GroundTruth:
    order = np.lexsort((items, users))
    users, items, ratings = users[order], items[order], ratings[order]
    ids, starts, counts = np.unique(users, return_index=True, return_counts=True)
    width = int(counts.max())
    cands = np.full((len(ids), width), -1, np.int64)
    rel = np.full((len(ids), width), np.nan, np.float32)
    pos = np.arange(len(users)) - np.repeat(starts, counts)
    row = np.repeat(np.arange(len(ids)), counts)
    cands[row, pos] = items
    rel[row, pos] = (ratings >= threshold).astype(np.float32)
    u_ids, u_counts = np.unique(train["user_id"], return_counts=True)
    i_ids, i_counts = np.unique(train["item_id"], return_counts=True)
    return GroundTruth(
        users=ids,
        candidates=cands,
        relevance={"click": rel},
        user_train_impressions=count_lookup(u_ids, u_counts, ids),
        candidate_train_impressions=np.where(cands >= 0, count_lookup(i_ids, i_counts, cands), 0),
        metadata=metadata,
    )
