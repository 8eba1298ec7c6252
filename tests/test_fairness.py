"""Fairness metrics on hand-computed examples, and `Evaluator.fairness` with a scorer
whose error depends on the user group (must be flagged) and one whose does not."""

import numpy as np
import pytest

from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.evaluation.evaluator import Evaluator, Scorer
from tfrs_debias.metrics.fairness import (
    equal_error_test,
    exposure_shares,
    intra_list_similarity,
    shares_table,
)
from tfrs_debias.schema import ImpressionSchema


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


def _world(num_users=120, num_candidates=20, seed=0):
    rng = np.random.default_rng(seed)
    users = np.arange(num_users)
    candidates = rng.integers(0, 500, (num_users, num_candidates))
    rel = ((users[:, None] * 7 + candidates * 3) % 10) / 10.0
    truth = GroundTruth(
        users=users,
        candidates=candidates,
        relevance={"click": rel},
        user_train_impressions=rng.integers(0, 200, num_users),
        candidate_train_impressions=rng.integers(0, 1000, (num_users, num_candidates)),
        user_features={"user_segment": users % 2},
        item_features={"item_genre": candidates % 3},
    )
    schema = ImpressionSchema.default(
        tasks=("click",), user_features={"user_segment": 2}, item_features={"item_genre": 3}
    )
    return truth, schema


def _scorer(schema, segment_error):
    """Served probability = true relevance + noise (sd 0.05), + ``segment_error`` for
    users of segment 1."""

    def served(f):
        user, item = np.asarray(f["user_id"]), np.asarray(f["item_id"])
        rel = ((user * 7 + item * 3) % 10) / 10.0
        noise = 0.05 * np.sin(user * 12.9898 + item * 78.233) * 1.7
        bump = segment_error * (np.asarray(f["user_segment"]) == 1)
        return (rel + np.abs(noise) + bump)[:, None].astype(np.float32)

    return Scorer(("click",), schema, served, None, has_bias_part=False)


def test_fairness_flags_a_group_dependent_error_and_not_an_equal_one():
    truth, schema = _world()
    evaluator = Evaluator(truth, ks=(10,))
    unfair = evaluator.fairness(_scorer(schema, 0.1))
    seg = unfair["user_groups"]["user_segment"]["error"]
    assert seg["groups"]["1"]["mean"] - seg["groups"]["0"]["mean"] == pytest.approx(0.1, abs=0.01)
    assert seg["anova_p"] < 1e-6
    fair = evaluator.fairness(_scorer(schema, 0.0))
    assert fair["user_groups"]["user_segment"]["error"]["anova_p"] > 0.01  # negative control
    # Exposure: the scorer ranks by relevance (plus small noise), so its top-10 genre
    # shares are close to the truth's own.
    for g, shares in fair["item_exposure"]["item_genre"].items():
        assert shares["model"] == pytest.approx(shares["truth"], abs=0.05), g
    assert set(fair["item_exposure"]) == {"item_genre", "popularity"}
    assert set(fair["user_groups"]) == {"user_segment", "activity"}
