"""`ListNDCG` and `ListMRR`: ranking metrics over the slates of a batch, as Keras
metrics (logged during ``fit`` as ``val_ndcg_10`` etc.).

Rows are grouped into lists by their request id inside each batch
(`tfrs_debias.losses.ranking_losses.as_lists`; a slate split across two batches counts
as two lists). Per list: NDCG@k with linear gains (``Σ_{rank<k} y / log2(rank + 2)``
over the ideal order's) and the reciprocal rank of the first positive; ties keep the
rows' order; lists without a positive label are skipped. The metric is the mean over
lists.
"""

from __future__ import annotations

from tfrs_debias.backend import keras, tf
from tfrs_debias.losses.ranking_losses import as_lists


def _ranked(labels, scores, list_ids):
    """``(gains in score order [L, S], ideal gains [L, S], has_positive [L])``."""
    mask, y, s = as_lists(labels, scores, list_ids)
    s = tf.where(mask, s, tf.fill(tf.shape(s), float("-inf")))
    order = tf.argsort(s, axis=-1, direction="DESCENDING", stable=True)
    gains = tf.gather(tf.where(mask, y, 0.0), order, batch_dims=1)
    ideal = tf.sort(tf.where(mask, y, 0.0), axis=-1, direction="DESCENDING")
    return gains, ideal, tf.reduce_sum(ideal, axis=-1) > 0


def list_ndcg(labels, scores, list_ids, k: int = 10) -> tuple[tf.Tensor, tf.Tensor]:
    """``(ndcg [L], has_positive [L])`` of each list in the batch."""
    gains, ideal, valid = _ranked(labels, scores, list_ids)
    size = tf.shape(gains)[1]
    ranks = tf.cast(tf.range(size), tf.float32)
    discounts = tf.where(ranks < k, 1.0 / (tf.math.log(ranks + 2.0) / tf.math.log(2.0)), 0.0)
    dcg = tf.linalg.matvec(gains, discounts)
    idcg = tf.linalg.matvec(ideal, discounts)
    return tf.math.divide_no_nan(dcg, idcg), valid


def list_mrr(labels, scores, list_ids) -> tuple[tf.Tensor, tf.Tensor]:
    """``(reciprocal rank of the first positive [L], has_positive [L])``."""
    gains, _, valid = _ranked(labels, scores, list_ids)
    first = tf.argmax(tf.cast(gains > 0, tf.int32), axis=-1)
    return 1.0 / (tf.cast(first, tf.float32) + 1.0), valid


@keras.utils.register_keras_serializable(package="tfrs_debias")
class ListNDCG(keras.metrics.Mean):
    """Mean NDCG@k over the lists (request ids) of the batches seen.

    Args:
      k: the cut-off. Defaults to 10.
      name: defaults to ``ndcg_{k}``.
    """

    def __init__(self, k: int = 10, name: str | None = None, **kwargs):
        super().__init__(name=name or f"ndcg_{k}", **kwargs)
        self.k = int(k)

    def update_state(self, labels, scores, list_ids, sample_weight=None):
        values, valid = list_ndcg(labels, scores, list_ids, self.k)
        return super().update_state(tf.boolean_mask(values, valid))

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}


@keras.utils.register_keras_serializable(package="tfrs_debias")
class ListMRR(keras.metrics.Mean):
    """Mean reciprocal rank of the first positive over the lists of the batches seen."""

    def __init__(self, name: str = "mrr", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, labels, scores, list_ids, sample_weight=None):
        values, valid = list_mrr(labels, scores, list_ids)
        return super().update_state(tf.boolean_mask(values, valid))
