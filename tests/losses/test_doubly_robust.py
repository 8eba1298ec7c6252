"""`doubly_robust_terms` (DR-JL) against values worked out by hand, and which model each
of its losses trains."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.losses import doubly_robust_terms

LN3 = math.log(3.0)


def _bce(q, p):
    return -(q * math.log(p) + (1 - q) * math.log(1 - p))


def _inputs():
    # Observed pairs: labels 1, 0; prediction logits ln 3 (p = 0.75) for both; imputation
    # logits ln 3 (q = 0.75) and 0 (q = 0.5); self-normalised weights 1.5, 0.5.
    # Sampled pairs: prediction logits 0 (p = 0.5) and ln 3 (p = 0.75); imputation 0.
    return dict(
        labels=tf.constant([1.0, 0.0]),
        logits=tf.constant([LN3, LN3]),
        imputed_logits=tf.constant([LN3, 0.0]),
        sampled_logits=tf.constant([0.0, LN3]),
        sampled_imputed_logits=tf.constant([0.0, 0.0]),
        weights=tf.constant([1.5, 0.5]),
    )


def test_doubly_robust_terms_by_hand():
    terms = {k: v.numpy() for k, v in doubly_robust_terms(**_inputs()).items()}
    # e = BCE(y, 0.75): -ln 0.75 = 0.287682 and -ln 0.25 = 1.386294.
    e = np.array([-math.log(0.75), -math.log(0.25)])
    # ê = BCE(q, 0.75): q = 0.75 -> 0.562335, q = 0.5 -> 0.836988.
    e_hat = np.array([_bce(0.75, 0.75), _bce(0.5, 0.75)])
    np.testing.assert_allclose(e_hat, [0.562335, 0.836988], atol=1e-6)
    # Sampled pairs, q = 0.5: BCE(0.5, 0.5) = ln 2, BCE(0.5, 0.75) = 0.836988.
    e_sampled = np.array([math.log(2.0), _bce(0.5, 0.75)])
    w = np.array([1.5, 0.5])
    np.testing.assert_allclose(terms["observed"], w * e, rtol=1e-6)
    np.testing.assert_allclose(terms["imputed"], e_sampled - w * e_hat, rtol=1e-5)
    np.testing.assert_allclose(terms["imputation"], w * (e - e_hat) ** 2, rtol=1e-5)
    # L_pred = mean(w e) + mean(ê sampled) - mean(w ê) = 0.562335 + 0.765068 - 0.630998.
    l_pred = terms["observed"].mean() + terms["imputed"].mean()
    assert l_pred == pytest.approx(0.696405, abs=1e-5)
    # L_imp = mean(w (e - ê)^2) = (1.5 * 0.274653^2 + 0.5 * 0.549306^2) / 2 = 0.132010.
    assert terms["imputation"].mean() == pytest.approx(0.132010, abs=1e-5)


def test_each_loss_trains_only_its_own_model():
    inputs = _inputs()
    z, g = tf.Variable(inputs.pop("logits")), tf.Variable(inputs.pop("imputed_logits"))
    zs, gs = (
        tf.Variable(inputs.pop("sampled_logits")),
        tf.Variable(inputs.pop("sampled_imputed_logits")),
    )
    with tf.GradientTape(persistent=True) as tape:
        terms = doubly_robust_terms(
            logits=z, imputed_logits=g, sampled_logits=zs, sampled_imputed_logits=gs, **inputs
        )
        prediction = tf.reduce_mean(terms["observed"] + terms["imputed"])
        imputation = tf.reduce_mean(terms["imputation"])
    # The prediction loss moves the prediction logits, never the imputation model ...
    assert tape.gradient(prediction, [g, gs]) == [None, None]
    assert np.abs(tape.gradient(prediction, z).numpy()).sum() > 0
    # ... and the imputation loss moves the imputation model only.
    assert tape.gradient(imputation, [z, zs, gs]) == [None, None, None]
    # Its gradient on g pushes ê towards e: the first pair's ê (0.562) is above e (0.288),
    # and raising q lowers BCE(q, 0.75) here, so the gradient on g is negative.
    grad_g = tape.gradient(imputation, g).numpy()
    assert grad_g[0] < 0
