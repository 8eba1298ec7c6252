import numpy as np
import pytest

from tfrs_debias.evaluation.matrix_factorization import MatrixFactorization
from tfrs_debias.metrics.ranking import rank_auc


def _ratings(seed=0, users=60, items=40, rows=8000):
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    u, i = rng.integers(0, users, rows), rng.integers(0, items, rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-2.0 * np.sum(p[u] * q[i], axis=1)))).astype(int)
    return u, i, y


def test_learns_a_low_rank_preference_and_a_shuffled_control_does_not():
    u, i, y = _ratings()
    train, test = slice(0, 6000), slice(6000, None)
    mf = MatrixFactorization(dim=4, l2=0.01, iterations=300).fit(u[train], i[train], y[train])
    auc = rank_auc(y[test], mf.predict(u[test], i[test]))
    assert auc > 0.85  # the true probabilities score 0.921 on this test split
    shuffled = np.random.default_rng(1).permutation(y[train])
    control = MatrixFactorization(dim=4, l2=0.01, iterations=300).fit(u[train], i[train], shuffled)
    assert abs(rank_auc(y[test], control.predict(u[test], i[test])) - 0.5) < 0.08


def test_unseen_ids_get_the_global_rate_and_l2_is_picked_on_validation():
    u, i, y = _ratings(rows=2000)
    mf = MatrixFactorization(dim=2, iterations=200).fit(u, i, y)
    base = 1 / (1 + np.exp(-mf.params["b"][0]))
    assert mf.predict(np.array([10_000]), np.array([20_000]))[0] == pytest.approx(base)
    picked = MatrixFactorization.fit_on_validation(
        (u[:1500], i[:1500], y[:1500]), (u[1500:], i[1500:], y[1500:]),
        l2s=(1e-4, 1.0), dim=2, iterations=200,
    )  # fmt: skip
    assert picked.l2 in (1e-4, 1.0)
