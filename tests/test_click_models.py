import numpy as np
import pytest

from tfrs_debias.click_models import (
    ClickLog,
    DocumentCTR,
    PositionBasedModel,
    RankCTR,
    log_likelihood,
    perplexity,
    perplexity_by_rank,
)


def test_perplexity_and_log_likelihood_by_hand():
    clicks, ranks = np.array([1, 0, 1, 1]), np.array([0, 0, 1, 1])
    # rank 0: p(what happened) = 0.8, 0.8 -> 2 ** -log2(0.8) = 1.25; rank 1: 0.5 each -> 2.
    probs = np.array([0.8, 0.2, 0.5, 0.5])
    np.testing.assert_allclose(perplexity_by_rank(clicks, probs, ranks), [1.25, 2.0])
    assert perplexity(clicks, probs, ranks) == pytest.approx(1.625)
    assert log_likelihood(clicks, probs) == pytest.approx((2 * np.log(0.8) + 2 * np.log(0.5)) / 4)


def _log(n_sessions=40000, seed=0, contexts=("web",)):
    rng = np.random.default_rng(seed)
    n_q, n_d = 40, 10
    alpha = rng.uniform(0.05, 0.9, (n_q, n_d))
    decay = {"web": 1.0, "app": 0.5}
    q = rng.integers(0, n_q, n_sessions)
    ctx = rng.choice(contexts, n_sessions)
    docs = np.argsort(rng.random((n_sessions, n_d)), axis=1)  # random order per session
    ranks = np.tile(np.arange(n_d), (n_sessions, 1))
    gamma = np.array([[1.0 / (1 + r) ** decay[c] for r in range(n_d)] for c in ctx])
    clicks = rng.random((n_sessions, n_d)) < alpha[q[:, None], docs] * gamma
    cols = {
        "q": np.repeat(q, n_d),
        "d": docs.reshape(-1),
        "r": ranks.reshape(-1),
        "c": clicks.reshape(-1).astype(int),
        "ctx": np.repeat(ctx, n_d).astype(object),
    }
    return cols, decay


def test_pbm_em_recovers_examination_per_context():
    cols, decay = _log(contexts=("web", "app"))
    log = ClickLog.from_columns(cols, "q", "d", "r", "c", context="ctx")
    pbm = PositionBasedModel().fit(log)
    exam = pbm.examination()
    for i, name in enumerate(log.contexts):
        true = 1.0 / (1 + np.arange(10)) ** decay[name]
        np.testing.assert_allclose(exam[i], true, rtol=0.1)
    # On logs that follow a PBM, the PBM explains clicks better than either CTR baseline.
    ppl = {
        name: perplexity(log.clicks, model.fit(log).predict(log), log.ranks)
        for name, model in (
            ("pbm", PositionBasedModel()),
            ("rank", RankCTR()),
            ("doc", DocumentCTR()),
        )
    }
    assert ppl["pbm"] < min(ppl["doc"], ppl["rank"]) - 0.05, ppl


def test_rank_and_document_ctr_by_hand():
    cols = {
        "q": np.array([1, 1, 1, 2]),
        "d": np.array([7, 7, 8, 7]),
        "r": np.array([0, 0, 1, 1]),
        "c": np.array([1, 0, 0, 1]),
    }
    log = ClickLog.from_columns(cols, "q", "d", "r", "c")
    np.testing.assert_allclose(RankCTR().fit(log).rate[:, 0], [0.5, 0.5])
    doc = DocumentCTR(prior_strength=0).fit(log)
    assert doc.pair_rate[(1, 7)] == 0.5 and doc.pair_rate[(2, 7)] == 1.0
    assert doc.doc_rate[7] == pytest.approx(2 / 3)
    unseen = ClickLog.from_columns({k: v[:1] + 100 for k, v in cols.items()}, "q", "d", "r", "c")
    assert doc.predict(unseen)[0] == pytest.approx(0.5)  # global rate 2/4
