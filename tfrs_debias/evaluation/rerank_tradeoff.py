"""`rerank_tradeoff`: what the re-ranking knobs cost and buy, measured with a model's
own ``select_top_k`` (`TopItemSelector`) on a `GroundTruth`'s test users."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.evaluation.group_fairness import first_truth_task
from tfrs_debias.metrics.buckets import item_bucket
from tfrs_debias.metrics.fairness import intra_list_similarity
from tfrs_debias.metrics.ground_truth import candidate_features
from tfrs_debias.serving.reranker import RerankOptions


def rerank_tradeoff(
    truth: GroundTruth,
    selector,
    tasks: Sequence[str],
    settings: Sequence[Mapping[str, float]],
    users: int = 200,
    k: int = 10,
    seed: int = 0,
    item_age: np.ndarray | None = None,
    item_quantiles: Sequence[float] = (0.5, 0.9),
) -> dict[str, Any] | None:
    """For each of ``settings`` (`RerankOptions` fields), over ``users`` sampled test
    users: NDCG@k of the list ``selector`` selects against true relevance (first task
    the truth has), its intra-list similarity (share of pairs with the same value of the
    export's category feature), the share of head items in it and, with ``item_age``
    (``[N, C]`` like the truth's candidates), the share of fresh items (age below the
    setting's half-life). None without a category feature or a task with a truth."""
    first = first_truth_task(truth, tasks)
    category = selector.reranker.get("category_feature")
    if first is None or category is None or category not in truth.item_features:
        return None
    options = [RerankOptions.from_mapping(s) for s in settings]
    rel = np.nan_to_num(truth.relevance[first[1]], nan=0.0)
    heads = item_bucket(truth.candidate_train_impressions, item_quantiles, truth.mask)
    feats = candidate_features(truth, selector.schema)
    n, c = truth.candidates.shape
    rows = np.random.default_rng(seed).choice(n, min(users, n), replace=False)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    per_user = {f.name for f in selector.served_features if f.role in ("user_id", "user_feature")}
    metrics: dict[str, list] = {"ndcg": [], "intra_list_similarity": [], "head_share": []}
    if item_age is not None:
        metrics["fresh_share"] = []
    for option in options:
        values: dict[str, list] = {name: [] for name in metrics}
        for row in rows:
            valid = truth.mask[row]
            user = {name: feats[name].reshape(n, c)[row, 0] for name in per_user}
            cands = {
                name: column.reshape(n, c)[row][valid]
                for name, column in feats.items()
                if name not in per_user
            }
            ages = None if item_age is None else item_age[row][valid]
            picks = selector.select(user, cands, k=k, item_age=ages, options=option)
            where = {item: j for j, item in enumerate(truth.candidates[row][valid].tolist())}
            idx = np.array([where[p.item_id] for p in picks], dtype=np.int64)
            gains = rel[row][valid][idx]
            ideal = np.sort(rel[row][valid])[::-1][:k]
            if ideal.sum() > 0:
                dcg = gains @ discounts[: gains.size]
                values["ndcg"].append(dcg / (ideal @ discounts[: ideal.size]))
            categories = truth.item_features[category][row][valid][idx]
            values["intra_list_similarity"].append(intra_list_similarity(categories))
            values["head_share"].append(float(np.mean(heads[row][valid][idx] == "head")))
            if ages is not None:
                values["fresh_share"].append(float(np.mean(ages[idx] < option.freshness_half_life)))
        for name, got in values.items():
            finite = [v for v in got if np.isfinite(v)]
            metrics[name].append(float(np.mean(finite)) if finite else None)
    return {
        "settings": [dataclasses.asdict(o) for o in options],
        "lambdas": [o.diversity_lambda for o in options],
        "users": int(rows.size),
        "category": category,
        "k": k,
        **metrics,
    }
