"""`compare_click_models`: on logs without ground truth, how well a model's full
(biased) click probabilities explain held-out clicks next to the click-model baselines
(PBM by EM, rank CTR, document CTR), and the examination curve it learned per
bias-feature value beside PBM's, with bootstrap intervals.

The query of the click-model literature is the user id (a search log converted with
``tfrs-debias convert`` maps the query to ``user_id``); the rank is the first integer
bias feature; the context is the first string bias feature (device, surface), if any.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfrs_debias.click_models import (
    ClickLog,
    DocumentCTR,
    PositionBasedModel,
    RankCTR,
    log_likelihood,
    perplexity,
    perplexity_by_rank,
)
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.metrics.ground_truth import apply_batched
from tfrs_debias.schema import ImpressionSchema


def _roles(schema: ImpressionSchema):
    rank = next((f for f in schema.bias_features if f.dtype == "int64"), None)
    context = next((f for f in schema.bias_features if f.dtype == "string"), None)
    return rank, context


def compare_click_models(
    scorer,
    train_files,
    test_files,
    schema: ImpressionSchema,
    task: str | None = None,
    max_pairs: int = 1000,
    num_bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Perplexity / log-likelihood on ``test_files`` of the scorer's full probabilities
    and of PBM, rank CTR and document CTR fitted on ``train_files``; learned examination
    per context value vs PBM's (None when the logs have no integer bias feature)."""
    rank, context = _roles(schema)
    task = task or scorer.tasks[0]
    if rank is None or scorer.biased is None or task not in schema.tasks:
        return None
    read = ImpressionSchema(
        schema.by_role("user_id", "item_id", "user_feature", "item_feature", "bias", "popularity")
        + (schema[task],)
    )
    train_cols, test_cols = read_columns(train_files, read), read_columns(test_files, read)
    if not train_cols or not test_cols:
        return None
    names = dict(query=schema.user_id.name, doc=schema.item_id.name, rank=rank.name, click=task)
    ctx = context.name if context is not None else None
    train_log = ClickLog.from_columns(train_cols, **names, context=ctx)
    test_log = ClickLog.from_columns(
        test_cols, **names, context=ctx, contexts=train_log.contexts, num_ranks=train_log.num_ranks
    )
    baselines = {
        "pbm": PositionBasedModel().fit(train_log),
        "rank_ctr": RankCTR().fit(train_log),
        "doc_ctr": DocumentCTR().fit(train_log),
    }
    index = scorer.tasks.index(task)
    probs = {name: m.predict(test_log) for name, m in baselines.items()}
    probs["model"] = apply_batched(scorer.biased, test_cols)[:, index]
    ranks = np.minimum(test_log.ranks, train_log.num_ranks - 1)
    out: dict[str, Any] = {
        "task": task,
        "impressions": len(test_log),
        "perplexity": {n: perplexity(test_log.clicks, p, ranks) for n, p in probs.items()},
        "perplexity_by_rank": {
            n: perplexity_by_rank(test_log.clicks, p, ranks).tolist() for n, p in probs.items()
        },
        "log_likelihood": {n: log_likelihood(test_log.clicks, p) for n, p in probs.items()},
    }
    out["examination"] = _learned_curves(
        scorer,
        test_cols,
        rank,
        context,
        train_log,
        baselines["pbm"],
        index,
        max_pairs,
        num_bootstrap,
        seed,
    )
    ppl = out["perplexity"]
    out["summary"] = [
        "click perplexity (lower is better): "
        + ", ".join(f"{n} {v:.4f}" for n, v in sorted(ppl.items(), key=lambda kv: kv[1]))
    ]
    return out


def _learned_curves(scorer, cols, rank, context, log, pbm, index, max_pairs, num_boot, seed):
    rng = np.random.default_rng(seed)
    n = len(next(iter(cols.values())))
    pick = rng.choice(n, min(max_pairs, n), replace=False)
    pairs = {k: v[pick] for k, v in cols.items()}
    contexts = list(log.contexts)
    learned = np.zeros((len(contexts), log.num_ranks))
    low, high = np.zeros_like(learned), np.zeros_like(learned)
    for c, value in enumerate(contexts):
        per_rank = []
        for r in range(log.num_ranks):
            feats = {**pairs, rank.name: np.full(pick.size, r, np.int64)}
            if context is not None:
                feats[context.name] = np.full(pick.size, str(value).encode(), dtype=object)
            per_rank.append(apply_batched(scorer.biased, feats)[:, index])
        per_rank = np.stack(per_rank)  # [ranks, pairs]
        learned[c] = per_rank.mean(1) / per_rank[0].mean()
        boot = rng.integers(0, pick.size, size=(num_boot, pick.size))
        ratios = per_rank[:, boot].mean(2) / per_rank[0][boot].mean(1)  # [ranks, boot]
        low[c], high[c] = np.quantile(ratios, [0.025, 0.975], axis=1)
    pbm_curve = pbm.examination()
    error = np.abs(learned - pbm_curve) / np.maximum(pbm_curve, 1e-9)
    return {
        "contexts": [str(c) for c in contexts],
        "learned": learned.tolist(),
        "learned_low": low.tolist(),
        "learned_high": high.tolist(),
        "pbm": pbm_curve.tolist(),
        "relative_error_vs_pbm": error.tolist(),
        "mean_error_vs_pbm": float(error.mean()),
        "max_error_vs_pbm": float(error.max()),
    }
