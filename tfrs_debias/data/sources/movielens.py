"""MovieLens-style ratings turned into impression logs with known ground truth.

Reads ml-100k ``u.data`` (tab-separated), ml-1m ``ratings.dat`` (``::``) and
ml-latest ``ratings.csv`` (with header), auto-detected, or tensorflow-datasets'
``movielens/*-ratings`` when it is already prepared on disk (never downloads).

Conversion (`MovieLensConverter`): a rating gives the true relevance
``rel = σ(rel_slope · (rating − rel_midpoint))``. Each user's latest ratings
(``truth_fraction``) are held out as the truth's candidate set; from the rest, requests
draw candidates, a logging policy ranks them by a noisy mix of relevance and item
popularity, and position x device examination (as in the simulator) gives
``click ~ Bernoulli(e · rel)``, ``like ~ Bernoulli(σ(3 · (rating − like_midpoint)))``
given a click.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfrs_debias.data.io.files import absolute, is_file, text_lines
from tfrs_debias.data.io.log_dataset import flatten_slates, write_log_dataset
from tfrs_debias.data.io.truth import GroundTruth, count_lookup
from tfrs_debias.data.sources.click_model import (
    TWINS,
    ExaminationModel,
    LoggingPolicy,
    draw_labels,
    keep_rows,
    logit,
    rank_slates,
    sigmoid,
    twin_labels,
)
from tfrs_debias.schema import ImpressionSchema

FORMATS = ("ml-100k", "ml-1m", "ml-latest")


@dataclasses.dataclass
class Ratings:
    """Columns of a ratings file: ``[n]`` arrays."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.user)


def detect_format(path: str) -> str:
    """``"ml-100k"``, ``"ml-1m"`` or ``"ml-latest"`` from the first line of ``path``."""
    first = next(text_lines(path), "").strip()
    if not first:
        raise ValueError(f"{path}: empty ratings file")
    if "::" in first:
        return "ml-1m"
    if first.lower().startswith("userid,"):
        return "ml-latest"
    if len(first.split("\t")) == 4:
        return "ml-100k"
    raise ValueError(
        f"{path}: line 1: unrecognised ratings format {first[:60]!r}; expected ml-100k "
        "'user<TAB>item<TAB>rating<TAB>timestamp', ml-1m 'user::item::rating::timestamp' "
        "or ml-latest CSV with header 'userId,movieId,rating,timestamp'"
    )


def read_ratings(path: str, fmt: str | None = None) -> Ratings:
    """Reads a MovieLens ratings file; a malformed line raises naming file and line."""
    if not is_file(path):
        raise FileNotFoundError(
            f"{path}: ratings file not found. Put a MovieLens ratings file there "
            "(ml-100k u.data, ml-1m ratings.dat or ml-latest ratings.csv); nothing is downloaded."
        )
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    sep = {"ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}[fmt]
    users, items, ratings, stamps = [], [], [], []
    for lineno, line in enumerate(text_lines(path), start=1):
        line = line.strip()
        if not line or (fmt == "ml-latest" and lineno == 1):
            continue
        parts = line.split(sep)
        if len(parts) != 4:
            raise ValueError(f"{path}: line {lineno}: expected 4 fields, got {len(parts)}")
        try:
            u, i, r, t = int(parts[0]), int(parts[1]), float(parts[2]), int(float(parts[3]))
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: non-numeric field in {line[:80]!r}") from None
        if not (0 < r <= 10) or not np.isfinite(r):
            raise ValueError(f"{path}: line {lineno}: rating {r} out of range (0, 10]")
        users.append(u)
        items.append(i)
        ratings.append(r)
        stamps.append(t)
    if not users:
        raise ValueError(f"{path}: no ratings")
    return Ratings(
        np.asarray(users, np.int64),
        np.asarray(items, np.int64),
        np.asarray(ratings, np.float64),
        np.asarray(stamps, np.int64),
        source=f"{fmt}:{absolute(path)}",
    )


def read_tfds_ratings(name: str = "movielens/100k-ratings", data_dir: str | None = None) -> Ratings:
    """Reads tensorflow-datasets' MovieLens ratings if already prepared under ``data_dir``.

    Never downloads: a dataset that is not on disk is a ``FileNotFoundError`` that
    says where tensorflow-datasets looked.
    """
    import tensorflow_datasets as tfds  # heavy, and only needed here

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tensorflow-datasets '{name}' is not prepared under {builder.data_dir}; "
            "prepare it there (tfds build with a manual directory) or pass a ratings file. "
            "Nothing is downloaded at run time."
        )
    ds = builder.as_dataset(split="train", shuffle_files=False).batch(65536)
    cols: dict[str, list] = {"user_id": [], "movie_id": [], "user_rating": [], "timestamp": []}
    for batch in ds.as_numpy_iterator():
        for key in cols:
            cols[key].append(batch[key])
    user = np.concatenate(cols["user_id"]).astype(np.int64)
    item = np.concatenate(cols["movie_id"]).astype(np.int64)
    return Ratings(
        user,
        item,
        np.concatenate(cols["user_rating"]).astype(np.float64),
        np.concatenate(cols["timestamp"]).astype(np.int64),
        source=f"tfds:{name}",
    )


@dataclasses.dataclass(frozen=True)
class MovieLensConfig:
    """How ratings become impressions."""

    slate_length: int = 10
    candidates_per_request: int = 20
    requests_per_rating: float = 0.5
    truth_fraction: float = 0.2
    min_user_ratings: int = 10
    rel_slope: float = 2.0
    rel_midpoint: float = 3.5
    like_midpoint: float = 4.25
    policy: LoggingPolicy = LoggingPolicy()
    examination: ExaminationModel = ExaminationModel()
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0


class MovieLensConverter:
    """Turns `Ratings` into impression-log splits, oracle twins and a `GroundTruth`."""

    def __init__(self, config: MovieLensConfig | None = None):
        self.config = config or MovieLensConfig()

    @property
    def schema(self) -> ImpressionSchema:
        c = self.config
        return ImpressionSchema.default(
            tasks=("click", "like"), num_positions=c.slate_length, devices=c.examination.devices
        )

    def relevance(self, rating: np.ndarray) -> dict[str, np.ndarray]:
        c = self.config
        rel = sigmoid(c.rel_slope * (rating - c.rel_midpoint))
        return {"click": rel, "like": rel * sigmoid(3.0 * (rating - c.like_midpoint))}

    def convert(self, ratings: Ratings, progress: bool = True) -> tuple[dict, GroundTruth]:
        c = self.config
        rng = np.random.default_rng(c.seed)
        item_ids, item_index = np.unique(ratings.item, return_inverse=True)
        counts = np.bincount(item_index)
        log_pop = np.log1p(counts)
        pop_z = (log_pop - log_pop.mean()) / max(log_pop.std(), 1e-9)
        exam_curves = c.examination.curves(c.slate_length)
        order = np.lexsort((ratings.timestamp, ratings.user))
        users_sorted = ratings.user[order]
        starts = np.flatnonzero(np.r_[True, users_sorted[1:] != users_sorted[:-1]])
        ends = np.r_[starts[1:], len(order)]
        slates: dict[str, list] = {}
        truth_rows: list[tuple[int, np.ndarray, np.ndarray]] = []
        for lo, hi in tqdm(
            zip(starts, ends, strict=True),
            total=len(starts),
            desc="convert",
            unit="user",
            disable=not progress,
        ):
            rows = order[lo:hi]
            user = int(users_sorted[lo])
            n_truth = (
                int(round(len(rows) * c.truth_fraction)) if len(rows) >= c.min_user_ratings else 0
            )
            pool, held = rows[: len(rows) - n_truth], rows[len(rows) - n_truth :]
            if n_truth:
                truth_rows.append((user, item_index[held], ratings.rating[held]))
            if len(pool) < c.slate_length:
                continue
            n_req = max(1, int(round(len(pool) * c.requests_per_rating / c.slate_length)))
            n_cand = min(c.candidates_per_request, len(pool))
            keys = rng.random((n_req, len(pool)))
            cand = np.argpartition(keys, n_cand - 1, axis=1)[:, :n_cand]
            cand_rows = pool[cand]
            rel = self.relevance(ratings.rating[cand_rows])
            policy = c.policy.scores(logit(rel["click"]), pop_z[item_index[cand_rows]], rng)
            shown = np.take_along_axis(cand_rows, rank_slates(policy, c.slate_length), axis=1)
            device = rng.choice(
                len(c.examination.devices), size=n_req, p=c.examination.device_probs
            )
            rel_shown = self.relevance(ratings.rating[shown])
            labels = draw_labels(
                exam_curves[device], rel_shown["click"], rel_shown["like"] / rel_shown["click"], rng
            )
            for key, value in {
                "user": np.full(n_req, user),
                "items": ratings.item[shown],
                "device": device,
                **labels,
            }.items():
                slates.setdefault(key, []).append(value)
        if not slates:
            raise ValueError(
                f"{ratings.source}: no user has {c.slate_length} ratings outside the held-out "
                "truth; nothing to log"
            )
        req = {k: np.concatenate(v) for k, v in slates.items()}
        splits = self._split(req, rng)
        return splits, self._truth(truth_rows, item_ids, splits["train"], ratings.source)

    def _split(self, req: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, dict]:
        c = self.config
        n = len(req["user"])
        perm = rng.permutation(n)
        n_test = int(round(n * c.test_fraction))
        n_valid = int(round(n * c.valid_fraction))
        parts = {
            "test": perm[:n_test],
            "valid": perm[n_test : n_test + n_valid],
            "train": perm[n_test + n_valid :],
        }
        devices = np.array(c.examination.devices, dtype=object)
        splits = {}
        for name, idx in parts.items():
            idx = np.sort(idx)
            for prefix in TWINS if name != "test" else ("",):
                labels, keep = twin_labels(req, prefix, idx, ("click", "like"))
                columns = flatten_slates(
                    request_ids=idx.astype(np.int64),
                    users=req["user"][idx],
                    devices=devices[req["device"][idx]],
                    items=req["items"][idx],
                    labels=labels,
                )
                splits[prefix + name] = keep_rows(columns, keep)
        return splits

    def _truth(self, truth_rows, item_ids, train, source) -> GroundTruth:
        c = self.config
        width = max((len(r[1]) for r in truth_rows), default=1)
        n = len(truth_rows)
        users = np.array([r[0] for r in truth_rows], dtype=np.int64)
        cands = np.full((n, width), -1, np.int64)
        ratings = np.full((n, width), np.nan)
        for k, (_, items, rating) in enumerate(truth_rows):
            cands[k, : len(items)] = item_ids[items]
            ratings[k, : len(items)] = rating
        rel = self.relevance(np.nan_to_num(ratings, nan=0.0))
        rel = {t: np.where(cands >= 0, v, np.nan).astype(np.float32) for t, v in rel.items()}
        u_ids, u_counts = np.unique(train["user_id"], return_counts=True)
        i_ids, i_counts = np.unique(train["item_id"], return_counts=True)
        return GroundTruth(
            users=users,
            candidates=cands,
            relevance=rel,
            user_train_impressions=count_lookup(u_ids, u_counts, users),
            candidate_train_impressions=np.where(
                cands >= 0, count_lookup(i_ids, i_counts, cands), 0
            ),
            devices=tuple(c.examination.devices),
            examination=c.examination.curves(c.slate_length),
            metadata={"source": source, "config": dataclasses.asdict(c)},
        )

    def write(
        self,
        ratings: Ratings,
        out_dir: str,
        num_shards: int = 2,
        compression: str = "",
        overwrite: bool = False,
        progress: bool = True,
    ) -> dict[str, list[str]]:
        splits, truth = self.convert(ratings, progress=progress)
        return write_log_dataset(
            out_dir,
            self.schema,
            splits,
            truth,
            num_shards=num_shards,
            compression=compression,
            overwrite=overwrite,
            progress=progress,
        )


def config_from_dict(data: dict[str, Any]) -> MovieLensConfig:
    unknown = set(data) - {f.name for f in dataclasses.fields(MovieLensConfig)}
    if unknown:
        raise ValueError(f"unknown movielens config keys {sorted(unknown)}")
    if "examination" in data:
        data = {**data, "examination": ExaminationModel.coerce(data["examination"])}
    if "policy" in data:
        data = {**data, "policy": LoggingPolicy.coerce(data["policy"])}
    return MovieLensConfig(**data)
