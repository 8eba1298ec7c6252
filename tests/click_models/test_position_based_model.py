import numpy as np

from tfrs_debias.click_models import (
    ClickLog,
    DocumentCTR,
    PositionBasedModel,
    RankCTR,
    perplexity,
)


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
