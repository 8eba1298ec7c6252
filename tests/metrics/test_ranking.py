import math

import numpy as np
import pytest

from tfrs_debias.metrics import dcg_at_k, ndcg_at_k


def test_ndcg_by_hand():
    scores = np.array([[3.0, 2.0, 1.0]])
    rel = np.array([[1.0, 0.0, 0.5]])
    # DCG = 1/log2(2) + 0/log2(3) + 0.5/log2(4) = 1.25 ; ideal = 1 + 0.5/log2(3)
    np.testing.assert_allclose(dcg_at_k(scores, rel, 3), [1.25])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 3), [1.25 / (1 + 0.5 / math.log2(3))])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 1), [1.0])
    # reversed ranking: 0.5 + 0/log2(3) + 1/log2(4)
    np.testing.assert_allclose(ndcg_at_k(-scores, rel, 3), [1.0 / (1 + 0.5 / math.log2(3))])
    # a masked (padding) candidate is never ranked
    mask = np.array([[False, True, True]])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 2, mask), [0.5 / math.log2(3) / 0.5])
    assert np.isnan(ndcg_at_k(scores, np.zeros((1, 3)), 3)[0])


def test_rank_auc_by_hand():
    from tfrs_debias.metrics import rank_auc

    # positives scored 0.9 and 0.4, negatives 0.8, 0.4, 0.1: of the 6 pairs the
    # positive wins 4 (0.9 > all three, 0.4 > 0.1), ties 1 (0.4 = 0.4), loses 1.
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.4, 0.4, 0.1])
    assert rank_auc(labels, scores) == pytest.approx(4.5 / 6)
    assert rank_auc(labels, -scores) == pytest.approx(1.5 / 6)  # reversed: 1 - AUC
    assert np.isnan(rank_auc(np.ones(3), np.arange(3)))
