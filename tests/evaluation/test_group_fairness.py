"""`Evaluator.fairness` with a scorer whose error depends on the user group, and a
negative control whose error does not."""

import numpy as np
import pytest

from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.evaluation.evaluator import Evaluator, Scorer
from tfrs_debias.schema import ImpressionSchema


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
