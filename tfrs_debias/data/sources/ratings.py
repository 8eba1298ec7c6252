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

import os
import re

import numpy as np

from tfrs_debias.data.io.log_dataset import write_log_dataset
from tfrs_debias.data.io.truth import GroundTruth, count_lookup
from tfrs_debias.schema import ImpressionSchema

_SPLIT = re.compile(r"[\s,]+")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT64 = (-(2**63), 2**63 - 1)


def _is_header(parts: list[str]) -> bool:
    """A header names its columns: ``user item rating``, ``userId,movieId,rating``."""
    return all(_NAME.match(p) for p in parts[:3])


def read_triples(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, ratings)`` from a ``user item rating`` file; errors name the line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: ratings file not found")
    users, items, ratings = [], [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
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


def ratings_dataset(
    train_path: str,
    test_path: str,
    out_dir: str,
    positive_threshold: float = 4.0,
    valid_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Writes train/valid (from the biased file), test (the random file), schema and truth."""
    schema = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False)
    tu, ti, tr = read_triples(train_path)
    eu, ei, er = read_triples(test_path)
    rng = np.random.default_rng(seed)
    valid = rng.random(len(tu)) < valid_fraction

    def columns(u, i, r):
        return {"user_id": u, "item_id": i, "click": (r >= positive_threshold).astype(np.int64)}

    splits = {
        "train": columns(tu[~valid], ti[~valid], tr[~valid]),
        "valid": columns(tu[valid], ti[valid], tr[valid]),
        "test": columns(eu, ei, er),
    }
    truth = _truth(
        eu,
        ei,
        er,
        splits["train"],
        positive_threshold,
        {
            "source": "ratings",
            "train": os.path.abspath(train_path),
            "test": os.path.abspath(test_path),
            "positive_threshold": positive_threshold,
        },
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
