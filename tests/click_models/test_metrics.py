import numpy as np
import pytest

from tfrs_debias.click_models import (
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
