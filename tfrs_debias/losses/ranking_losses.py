"""Ranking losses over the requests in a batch.

A batch of impression rows is regrouped by ``request_id`` into lists
(`group_into_lists`: ``[num_lists, max_list_size]`` with a mask), so rows of a request
need not be adjacent. Conventions follow TF-Ranking:

* `softmax_loss` (listwise): per list, the cross-entropy between the labels normalised
  to sum 1 and the softmax of the logits, ``-Σ_i (y_i / Σ_j y_j) · log softmax(s)_i``;
  lists without a positive label carry no information and are left out; the mean over
  the remaining lists.
* `pairwise_logistic_loss`: over the pairs of one list with ``y_i > y_j``,
  ``log(1 + exp(-(s_i - s_j)))``; the mean over all such pairs of the batch.

Both return 0 when the batch has nothing to learn from (no positive, no pair).
"""

from __future__ import annotations

from tfrs_debias.backend import tf


def group_into_lists(list_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(index [B, 2], num_lists, max_size)``: each row's (list, position in list) for
    ``tf.scatter_nd`` into ``[num_lists, max_size]``; rows keep their batch order within
    a list."""
    list_ids = tf.reshape(list_ids, [-1])
    _, segment = tf.unique(list_ids)
    segment = tf.cast(segment, tf.int32)
    rows = tf.shape(segment)[0]
    num_lists = tf.cond(rows > 0, lambda: tf.reduce_max(segment) + 1, lambda: 0)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(segment), segment, num_lists)
    starts = tf.cumsum(counts, exclusive=True)
    order = tf.argsort(segment, stable=True)
    position_sorted = tf.range(rows) - tf.gather(starts, tf.gather(segment, order))
    position = tf.scatter_nd(order[:, None], position_sorted, [rows])
    max_size = tf.reduce_max(tf.concat([counts, [0]], axis=0))
    return tf.stack([segment, position], axis=1), num_lists, max_size


def _to_lists(values: tf.Tensor, index, num_lists, max_size, fill: float) -> tf.Tensor:
    base = tf.fill(tf.stack([num_lists, max_size]), tf.cast(fill, values.dtype))
    return tf.tensor_scatter_nd_update(base, index, tf.reshape(values, [-1]))


def as_lists(labels, logits, list_ids) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(mask, labels, logits)`` as ``[num_lists, max_size]`` (padding: mask False)."""
    index, num_lists, max_size = group_into_lists(list_ids)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
    logits = tf.cast(tf.reshape(logits, [-1]), tf.float32)
    mask = _to_lists(tf.ones_like(labels), index, num_lists, max_size, 0.0) > 0
    y = _to_lists(labels, index, num_lists, max_size, 0.0)
    s = _to_lists(logits, index, num_lists, max_size, 0.0)
    return mask, y, s


def softmax_loss(labels: tf.Tensor, logits: tf.Tensor, list_ids: tf.Tensor) -> tf.Tensor:
    """Listwise softmax cross-entropy (see the module docstring); scalar."""
    mask, y, s = as_lists(labels, logits, list_ids)
    s = tf.where(mask, s, tf.fill(tf.shape(s), -1e9))
    log_p = tf.nn.log_softmax(s, axis=-1)
    total = tf.reduce_sum(y, axis=-1)
    has_positive = total > 0
    per_list = -tf.reduce_sum(
        tf.where(mask, y * log_p, tf.zeros_like(log_p)), axis=-1
    ) / tf.maximum(total, 1e-12)
    per_list = tf.boolean_mask(per_list, has_positive)
    return tf.math.divide_no_nan(tf.reduce_sum(per_list), tf.cast(tf.size(per_list), tf.float32))


def pairwise_logistic_loss(labels: tf.Tensor, logits: tf.Tensor, list_ids: tf.Tensor) -> tf.Tensor:
    """Pairwise logistic loss (see the module docstring); scalar."""
    mask, y, s = as_lists(labels, logits, list_ids)
    both = mask[:, :, None] & mask[:, None, :]
    better = both & (y[:, :, None] > y[:, None, :])
    margin = s[:, :, None] - s[:, None, :]
    losses = tf.boolean_mask(tf.nn.softplus(-margin), better)
    return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(tf.size(losses), tf.float32))


def dual_learning_losses(
    labels: tf.Tensor,
    rank_logits: tf.Tensor,
    exam_logits: tf.Tensor,
    list_ids: tf.Tensor,
    ranks: tf.Tensor | None = None,
    max_weight: float = 20.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The dual learning algorithm's two losses (DLA: Ai et al., SIGIR 2018), scalars
    ``(rank_loss, exam_loss)``.

    Per list, the examination model's ``ψ = softmax(exam_logits)`` and the ranker's
    ``φ = softmax(rank_logits)``; inverse-propensity weights ``ψ_top / ψ_i`` and
    inverse-relevance weights ``φ_top / φ_i`` (``top``: the row with the smallest
    ``ranks`` value of the list, or the largest ψ / φ without ranks), clipped to
    ``[0, max_weight]`` and held constant (no gradient). Each model gets a
    click-weighted softmax cross-entropy with the other's weights:
    ``rank_loss = -Σ_i c_i w^ψ_i log φ_i / Σ_i c_i`` (over all lists of the batch), and
    the same for ``exam_loss`` with ``w^φ`` and ``log ψ``. Gradients of each loss reach
    only its own logits.
    """
    mask, y, s = as_lists(labels, rank_logits, list_ids)
    _, _, e = as_lists(labels, exam_logits, list_ids)
    neg = tf.fill(tf.shape(s), -1e9)
    log_phi = tf.nn.log_softmax(tf.where(mask, s, neg), axis=-1)
    log_psi = tf.nn.log_softmax(tf.where(mask, e, neg), axis=-1)
    if ranks is not None:
        _, _, r = as_lists(labels, tf.cast(ranks, tf.float32), list_ids)
        top = tf.argmin(tf.where(mask, r, tf.fill(tf.shape(r), 1e30)), axis=-1)
    else:
        top = None

    def weights(log_p: tf.Tensor) -> tf.Tensor:
        if top is None:
            anchor = tf.reduce_max(tf.where(mask, log_p, neg), axis=-1, keepdims=True)
        else:
            anchor = tf.gather(log_p, top[:, None], batch_dims=1)
        w = tf.clip_by_value(tf.exp(anchor - log_p), 0.0, max_weight)
        return tf.stop_gradient(tf.where(mask, w, tf.zeros_like(w)))

    clicks = tf.maximum(tf.reduce_sum(y), 1e-12)
    rank_loss = -tf.reduce_sum(tf.where(mask, y * weights(log_psi) * log_phi, 0.0)) / clicks
    exam_loss = -tf.reduce_sum(tf.where(mask, y * weights(log_phi) * log_psi, 0.0)) / clicks
    return rank_loss, exam_loss


#: The list losses by their ``EstimatorConfig.task_losses`` name (``"bce"``, the
#: pointwise default, is the estimators' own Ranking task; `TASK_LOSSES` lists all).
LIST_LOSSES = {"softmax": softmax_loss, "pairwise_logistic": pairwise_logistic_loss}
