"""`doubly_robust_terms`: the doubly robust (DR-JL) loss for ratings missing not at random.

Wang, Zhang, Sun and Qi, *Doubly Robust Joint Learning for Recommendation on Data
Missing Not at Random* (ICML 2019). The prediction model's loss over every (user, item)
pair ``D`` is estimated from the observed pairs ``O`` and an imputation model ``ê``
of the prediction error:

    L_pred = 1/|D| Σ_D ê_ui + 1/|D| Σ_O (e_ui − ê_ui) / p_ui

(unbiased when either the propensities ``p`` or the imputed errors are right), and the
imputation model is fitted jointly on the observed pairs:

    L_imp = 1/|D| Σ_O (e_ui − ê_ui)² / p_ui.

Here, for a binary task with prediction logit ``z``: ``e = BCE(y, σ(z))`` and the
imputed error ``ê = BCE(q, σ(z))`` with ``q = σ(g)`` the imputation model's label
probability. Within a batch, ``1/|D| Σ_D`` is the mean over sampled pairs (the
estimator pairs each row's user with another row's item), and ``|O|/|D| · 1/p`` is the
self-normalised inverse propensity ``w`` (weights averaging 1 over the batch). Each
loss moves only its own model: the prediction loss sees ``q`` as a constant, the
imputation loss sees ``z`` and ``e`` as constants.
"""

from __future__ import annotations

from tfrs_debias.backend import tf


def _bce(target: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)


def doubly_robust_terms(
    labels: tf.Tensor,
    logits: tf.Tensor,
    imputed_logits: tf.Tensor,
    sampled_logits: tf.Tensor,
    sampled_imputed_logits: tf.Tensor,
    weights: tf.Tensor,
) -> dict[str, tf.Tensor]:
    """Per-example DR-JL terms of one binary task (shapes ``[batch]``).

    Args:
      labels: 0/1 labels of the observed pairs.
      logits: the prediction model's logits ``z`` on the observed pairs.
      imputed_logits: the imputation model's logits ``g`` on the observed pairs.
      sampled_logits / sampled_imputed_logits: the same on the sampled pairs.
      weights: self-normalised inverse propensities ``w`` of the observed pairs.

    Returns:
      ``{"observed": w·e, "imputed": ê on the sampled pairs − w·ê on the observed,
      "imputation": w·(e − ê)²}``: ``mean(observed) + mean(imputed)`` is ``L_pred``
      and ``mean(imputation)`` is ``L_imp``.
    """
    labels = tf.cast(labels, tf.float32)
    error = _bce(labels, logits)
    q = tf.stop_gradient(tf.sigmoid(imputed_logits))
    q_sampled = tf.stop_gradient(tf.sigmoid(sampled_imputed_logits))
    imputed_here = _bce(q, logits)
    fitted = _bce(tf.sigmoid(imputed_logits), tf.stop_gradient(logits))
    return {
        "observed": weights * error,
        "imputed": _bce(q_sampled, sampled_logits) - weights * imputed_here,
        "imputation": weights * tf.square(tf.stop_gradient(error) - fitted),
    }
