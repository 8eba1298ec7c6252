"""`ListNDCG` / `ListMRR` on hand-computed slates, and their place in ``fit``."""

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.metrics.list_metrics import ListMRR, ListNDCG, list_mrr, list_ndcg

# Three interleaved lists: A (4 rows), B (all zero: skipped), C (2 rows).
IDS = tf.constant([7, 7, 9, 7, 3, 7, 9, 3])


LABELS = tf.constant([0, 1, 0, 0, 1, 1, 0, 0], tf.float32)


SCORES = tf.constant([0.9, 0.8, 0.3, 0.1, 2.0, 0.5, 0.2, 1.0])


def test_ndcg_and_mrr_by_hand():
    # A (id 7): labels 0, 1, 0, 1 with scores .9, .8, .1, .5 -> order 0, 1, 3, 2:
    # DCG = 1/log2(3) + 1/log2(4) = 0.63093 + 0.5; ideal 1 + 0.63093: NDCG 0.69343;
    # first positive at rank 2: RR 0.5. C (id 3): the positive scores highest: 1, 1.
    ndcg, valid = list_ndcg(LABELS, SCORES, IDS, k=10)
    np.testing.assert_allclose(ndcg.numpy(), [1.13093 / 1.63093, 0.0, 1.0], rtol=1e-4)
    assert valid.numpy().tolist() == [True, False, True]
    rr, _ = list_mrr(LABELS, SCORES, IDS)
    np.testing.assert_allclose(rr.numpy()[[0, 2]], [0.5, 1.0])
    metric = ListNDCG(10)
    metric.update_state(LABELS, SCORES, IDS)
    assert float(metric.result()) == pytest.approx((1.13093 / 1.63093 + 1.0) / 2, rel=1e-4)
    mrr = ListMRR()
    mrr.update_state(LABELS, SCORES, IDS)
    assert float(mrr.result()) == pytest.approx(0.75)
    # k = 1: A's top item is a 0: NDCG@1 = 0.
    assert list_ndcg(LABELS, SCORES, IDS, k=1)[0].numpy()[0] == 0.0


def test_ties_keep_row_order_and_empty_batches():
    ndcg, _ = list_ndcg(tf.constant([0.0, 1.0]), tf.constant([0.5, 0.5]), tf.constant([1, 1]))
    assert float(ndcg[0]) == pytest.approx(1 / np.log2(3) / 1.0)  # positive second
    rr, _ = list_mrr(tf.constant([0.0, 1.0]), tf.constant([0.5, 0.5]), tf.constant([1, 1]))
    assert float(rr[0]) == 0.5
    metric = ListNDCG(5)
    metric.update_state(tf.zeros([0]), tf.zeros([0]), tf.zeros([0], tf.int64))
    assert float(metric.result()) == 0.0
    assert ListNDCG.from_config(metric.get_config()).k == 5
