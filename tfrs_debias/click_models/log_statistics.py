"""`log_statistics`: the facts of a search click log that decide whether a position
model can be identified from it, and that a simulated stand-in must reproduce.

Measured on PyClick's Yandex relevance-prediction sample (``trainSample``, all 35,064
sessions): 20 query keys, the top one with 57% of the sessions; ~50 distinct documents
per query; a query-document pair is shown at its most frequent rank in 57% of its
impressions, and 52% of the pairs are shown at more than one rank (the variation that
identifies the curve); CTR by rank .257 .249 .170 .154 .106 .073 .069 .047 .050 .045;
0 / 1 / 2 / 3 / 4+ clicks in 34% / 41% / 12% / 6% / 7% of the sessions.
"""

from __future__ import annotations

import numpy as np


def log_statistics(
    queries: np.ndarray,
    docs: np.ndarray,
    ranks: np.ndarray,
    clicks: np.ndarray,
    sessions: np.ndarray,
) -> dict:
    """The statistics of one log, one entry per impression in each argument.

    Returns ``{"sessions", "queries", "top_query_share", "docs_per_query",
    "modal_rank_share", "multi_rank_pairs", "ctr_by_rank", "clicks_per_session"}``:
    ``modal_rank_share`` is, over all impressions, the share shown at their pair's most
    frequent rank; ``multi_rank_pairs`` the share of pairs shown at 2+ ranks;
    ``clicks_per_session`` the shares of sessions with 0, 1, 2, 3 and 4+ clicks.
    """
    ranks = np.asarray(ranks, np.int64)
    clicks = np.asarray(clicks, np.int64)
    _, query = np.unique(np.asarray(queries), return_inverse=True)
    _, doc = np.unique(np.asarray(docs), return_inverse=True)
    _, session = np.unique(np.asarray(sessions), return_inverse=True)
    num_ranks = int(ranks.max()) + 1
    # Sessions per query: a session's query is its first impression's.
    first = np.unique(session, return_index=True)[1]
    per_query = np.bincount(query[first])
    pair_keys, pair = np.unique(np.stack([query, doc], axis=1), axis=0, return_inverse=True)
    pair = pair.reshape(-1)
    counts = np.zeros((len(pair_keys), num_ranks), np.int64)
    np.add.at(counts, (pair, ranks), 1)
    shown = np.bincount(ranks, minlength=num_ranks)
    per_session = np.bincount(session, weights=clicks).astype(np.int64)
    return {
        "sessions": int(len(first)),
        "queries": int(len(per_query)),
        "top_query_share": float(per_query.max() / per_query.sum()),
        "docs_per_query": float(len(pair_keys) / len(per_query)),
        "modal_rank_share": float(counts.max(axis=1).sum() / counts.sum()),
        "multi_rank_pairs": float(np.mean((counts > 0).sum(axis=1) > 1)),
        "ctr_by_rank": (
            np.bincount(ranks, weights=clicks, minlength=num_ranks) / np.maximum(shown, 1)
        ).tolist(),
        "clicks_per_session": (
            np.bincount(np.minimum(per_session, 4), minlength=5) / len(per_session)
        ).tolist(),
    }
