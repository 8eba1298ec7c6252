"""`Reranker` on hand-computed examples (scores and similarities given, no model)."""

import types

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.serving.reranker import (
    BELOW_K,
    CATEGORY_CAP,
    EXCLUDED,
    NOT_INTERESTED,
    SELECTED,
    SIMILAR_TO_NOT_INTERESTED,
    TOO_SIMILAR,
    Reranker,
    RerankOptions,
)

# Five candidates: scores 1, .9, .8, .5, 0 (min-max scaled: the same numbers); items 0
# and 1 are near-duplicates.
SCORES = [1.0, 0.9, 0.8, 0.5, 0.0]


SIM = [
    [1.0, 0.9, 0.1, 0.2, 0.0],
    [0.9, 1.0, 0.2, 0.1, 0.0],
    [0.1, 0.2, 1.0, 0.3, 0.1],
    [0.2, 0.1, 0.3, 1.0, 0.0],
    [0.0, 0.0, 0.1, 0.0, 1.0],
]


IDS = [10, 11, 12, 13, 14]


def _rerank(
    scores=SCORES,
    sim=SIM,
    k=5,
    categories=None,
    ages=(),
    exclude=(),
    not_interested=(),
    ni_sim=None,
    **options,
):
    reranker = Reranker("embedding", "genre" if categories is not None else None)
    n = len(scores)
    same = None
    if categories is not None:
        same = reranker.same_category({"genre": tf.constant(categories)})
    out = reranker.rerank(
        tf.constant(scores, tf.float32),
        tf.constant(IDS[:n], tf.int64),
        tf.constant(sim, tf.float32),
        tf.constant(ni_sim if ni_sim is not None else [0.0] * n, tf.float32),
        same,
        tf.constant(ages, tf.float32),
        tf.constant(exclude, tf.int64),
        tf.constant(not_interested, tf.int64),
        tf.constant(k),
        RerankOptions.from_mapping(options).tensors(),
    )
    return {name: value.numpy().tolist() for name, value in out.items()}


def test_plain_top_k_and_exclusions():
    out = _rerank(k=3, exclude=[11])
    assert out["indices"] == [0, 2, 3]
    assert out["scores"] == pytest.approx([1.0, 0.8, 0.5])
    assert out["base_ranks"] == [0, 1, 2]  # ranks among the candidates left
    assert out["status"] == [SELECTED, EXCLUDED, SELECTED, SELECTED, BELOW_K]


def test_mmr_on_five_items():
    # λ = 0.5, by hand: step 1 picks 0 (0.5·1). Step 2: item 1 0.45 − 0.45 = 0,
    # item 2 0.40 − 0.05 = 0.35, item 3 0.25 − 0.10 = 0.15, item 4 0 − 0 = 0 -> 2.
    # Step 3 (max sim to {0, 2}): item 1 0.45 − 0.45 = 0, item 3 0.25 − 0.15 = 0.10,
    # item 4 0 − 0.05 = −0.05 -> 3.
    out = _rerank(k=3, diversity_lambda=0.5)
    assert out["indices"] == [0, 2, 3]
    assert out["base_ranks"] == [0, 2, 3]
    assert out["status"] == [SELECTED, BELOW_K, SELECTED, SELECTED, BELOW_K]
    # λ = 0.99 goes through the greedy loop and keeps the plain order:
    # step 2: item 1 0.99·0.9 − 0.01·0.9 = 0.882 > item 2 0.792 − 0.001.
    assert _rerank(k=3, diversity_lambda=0.99)["indices"] == [0, 1, 2]
    # λ = 0: similarity alone after the first pick: item 4 (max sim 0) comes second.
    assert _rerank(k=2, diversity_lambda=0.0)["indices"] == [0, 4]


def test_similarity_threshold_rule():
    # Items more similar than 0.5 to a pick are skipped: 1 goes (0.9 to item 0).
    out = _rerank(k=5, similarity_threshold=0.5)
    assert out["indices"] == [0, 2, 3, 4]
    assert out["status"][1] == TOO_SIMILAR and out["blocked_by"][1] == 0
    # 0.25: 2 is 0.1 from 0 (kept), 3 is 0.3 from 2 (skipped, because of 2).
    out = _rerank(k=5, similarity_threshold=0.25)
    assert out["indices"] == [0, 2, 4]
    assert out["blocked_by"][3] == 2 and out["status"][3] == TOO_SIMILAR


def test_category_caps():
    genres = [1, 1, 2, 1, 2]
    out = _rerank(k=5, categories=genres, category_cap=1)
    assert out["indices"] == [0, 2]
    assert out["status"] == [SELECTED, CATEGORY_CAP, SELECTED, CATEGORY_CAP, CATEGORY_CAP]
    assert out["blocked_by"] == [-1, 0, -1, 0, 2]
    out = _rerank(k=5, categories=genres, category_cap=2)
    assert out["indices"] == [0, 1, 2, 4]
    assert out["blocked_by"][3] == 1
    assert _rerank(k=5, categories=genres, category_cap=0)["indices"] == [0, 1, 2, 3, 4]
    with pytest.raises(tf.errors.InvalidArgumentError, match="category feature"):
        _rerank(k=5, category_cap=1)  # no category feature


def test_freshness_decay():
    # 0.5 + 0.2·2^(−14/7) = 0.55; 0.4 + 0.2·2^0 = 0.6: the fresh item moves up.
    sim = [[1.0, 0.0], [0.0, 1.0]]
    out = _rerank([0.5, 0.4], sim, k=2, ages=[14.0, 0.0], freshness_weight=0.2)
    assert out["indices"] == [1, 0]
    assert out["scores"] == pytest.approx([0.6, 0.55])
    assert out["base_ranks"] == [1, 0]
    # Half-life 14: 0.5 + 0.2·0.5 = 0.6 vs 0.6: a tie keeps the first.
    out = _rerank(
        [0.5, 0.4], sim, k=2, ages=[14.0, 0.0], freshness_weight=0.2, freshness_half_life=14.0
    )
    assert out["scores"] == pytest.approx([0.6, 0.6])
    assert out["indices"] == [0, 1]
    # No ages: no boost.
    assert _rerank([0.5, 0.4], sim, k=2, freshness_weight=0.2)["scores"] == pytest.approx(
        [0.5, 0.4]
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="item_age"):
        _rerank([0.5, 0.4], sim, k=2, ages=[1.0, 2.0, 3.0])


def test_not_interested_and_similar_items_removed():
    out = _rerank(k=5, not_interested=[11], ni_sim=[0.95, 1.0, 0.2, 0.85, 0.0])
    assert out["indices"] == [2, 3, 4]
    assert out["status"][:2] == [SIMILAR_TO_NOT_INTERESTED, NOT_INTERESTED]
    out = _rerank(
        k=5, not_interested=[11], ni_sim=[0.95, 1.0, 0.2, 0.85, 0.0], not_interested_threshold=0.8
    )
    assert out["indices"] == [2, 4]


def test_similarities_from_embeddings_and_from_a_feature():
    vectors = {1: [1.0, 0.0], 2: [0.6, 0.8], 3: [0.0, 2.0]}  # cos(1,2)=.6, (2,3)=.8, (1,3)=0

    def item_vectors(ids):
        ids = ids.numpy().tolist()
        known = [i in vectors for i in ids]
        return tf.constant([vectors.get(i, [5.0, 5.0]) for i in ids]), tf.constant(known)

    model = types.SimpleNamespace(
        schema=types.SimpleNamespace(item_id=types.SimpleNamespace(name="item_id")),
        item_vectors=item_vectors,
    )
    feats = {"item_id": tf.constant([1, 2, 3, 9], tf.int64)}
    sim, ni = Reranker("embedding").similarities(model, feats, tf.constant([3, 9], tf.int64))
    expected = [[1, 0.6, 0, 0], [0.6, 1, 0.8, 0], [0, 0.8, 1, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(sim.numpy(), expected, atol=1e-6)  # unknown 9: similar to none
    np.testing.assert_allclose(ni.numpy(), [0, 0.8, 1, 0], atol=1e-6)
    feats = {"item_id": tf.constant([10, 11, 12, 13]), "genre": tf.constant([1, 2, 1, 3])}
    sim, ni = Reranker("genre").similarities(model, feats, tf.constant([12]))
    np.testing.assert_allclose(sim.numpy()[0], [1, 0, 1, 0])
    np.testing.assert_allclose(ni.numpy(), [1, 0, 1, 0])  # 10 shares 12's genre


def test_options_are_checked():
    with pytest.raises(ValueError, match="diversity_lambda"):
        RerankOptions(diversity_lambda=1.5)
    with pytest.raises(ValueError, match="unknown re-ranking options"):
        RerankOptions.from_mapping({"lambda": 0.5})
    with pytest.raises(tf.errors.InvalidArgumentError, match="diversity_lambda"):
        Reranker().rerank(
            tf.constant(SCORES),
            tf.constant(IDS, tf.int64),
            tf.constant(SIM),
            tf.zeros([5]),
            None,
            tf.zeros([0]),
            tf.zeros([0], tf.int64),
            tf.zeros([0], tf.int64),
            tf.constant(2),
            {**RerankOptions().tensors(), "diversity_lambda": tf.constant(-0.5)},
        )
