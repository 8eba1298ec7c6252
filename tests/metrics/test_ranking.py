import math

import numpy as np

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
