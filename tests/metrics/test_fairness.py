"""Fairness metrics on hand-computed examples: one-way ANOVA, exposure shares and
intra-list similarity."""

import numpy as np
import pytest

from tfrs_debias.metrics.fairness import (
    equal_error_test,
    exposure_shares,
    intra_list_similarity,
    shares_table,
)


def test_one_way_anova_by_hand():
    # A = 1, 2, 3 and B = 4, 5, 6: grand mean 3.5, between SS = 3·1.5² + 3·1.5² = 13.5
    # (1 df), within SS = 2 + 2 = 4 (4 df): F = 13.5 / 1 = 13.5, i.e. t = √13.5 = 3.674
    # with 4 df: two-sided p = 0.0213.
    out = equal_error_test(np.array([1, 2, 3, 4, 5, 6.0]), np.array(list("AAABBB")))
    assert out["anova_f"] == pytest.approx(13.5)
    assert out["anova_p"] == pytest.approx(0.0213, abs=2e-4)
    assert out["groups"]["A"] == {"n": 3, "mean": 2.0, "sem": pytest.approx(1 / np.sqrt(3))}
    assert out["worst_pair"] == ["A", "B"]
    assert out["worst_pair_p"] == pytest.approx(0.0213, abs=2e-4)  # one pair: no correction
    # A third group equal to A: the worst pair is still A vs B, its p times 3 pairs.
    three = equal_error_test(np.array([1, 2, 3, 4, 5, 6, 1, 2, 3.0]), np.array(list("AAABBBCCC")))
    assert three["worst_pair"] == ["A", "B"]
    assert three["worst_pair_p"] == pytest.approx(3 * out["worst_pair_p"])
    same = equal_error_test(np.array([1, 2, 3, 1, 2, 3.0]), np.array(list("AAABBB")))
    assert same["anova_f"] == pytest.approx(0.0) and same["anova_p"] == pytest.approx(1.0)
    # NaN values are dropped; a single group: no test.
    lone = equal_error_test(np.array([1.0, np.nan, 2.0]), np.array(list("AAB")))
    assert lone["anova_p"] is None and lone["groups"]["A"]["n"] == 1


def test_exposure_shares_and_intra_list_similarity_by_hand():
    groups = np.array([["a", "b", "a"], ["b", "b", "a"]])
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    # Top 2: row 0 -> a, b; row 1 -> a (3.0), b (2.0).
    assert exposure_shares(groups, scores, 2) == {"a": 0.5, "b": 0.5}
    mask = np.array([[True, True, True], [True, True, False]])
    # Row 1 without its third item: b, b.
    assert exposure_shares(groups, scores, 2, mask) == {"a": 0.25, "b": 0.75}
    assert intra_list_similarity([1, 1, 2]) == pytest.approx(1 / 3)  # 1 pair of 3
    assert intra_list_similarity([1, 2, 3]) == 0.0
    assert np.isnan(intra_list_similarity([1]))
    table = shares_table({"a": 0.5, "b": 0.5}, {"a": 1.0}, {"b": 1.0})
    assert table["b"] == {"candidates": 0.5, "truth": 0.0, "model": 1.0}
