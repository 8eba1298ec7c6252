import numpy as np
import pytest

from tfrs_debias.serving import TopItemSelector


def test_selector_from_model_and_saved_model_agree(exported):
    model, base, _, batch, _ = exported
    user = {"user_id": int(batch["user_id"][0]), "user_segment": int(batch["user_segment"][0])}
    cands = {
        "item_id": batch["item_id"].numpy().tolist(),
        "item_genre": batch["item_genre"].numpy().tolist(),
    }
    a = TopItemSelector.from_estimator(model).select(user, cands, k=5, exclude=cands["item_id"][:2])
    b = TopItemSelector.from_saved_model(base).select(
        user, cands, k=5, exclude=cands["item_id"][:2]
    )
    assert [p.item_id for p in a] == [p.item_id for p in b]
    assert not {p.item_id for p in a} & set(cands["item_id"][:2])
    for p in b:  # score = Σ_t w_t · p_t with the export's weights (1, 3)
        assert p.score == pytest.approx(
            p.probabilities["click"] + 3 * p.probabilities["like"], rel=1e-5
        )
    only_click = TopItemSelector.from_saved_model(base).select(
        user, cands, k=64, value_weights={"click": 1.0}
    )
    scores = [p.score for p in only_click]
    assert scores == sorted(scores, reverse=True)
    assert all(p.score == pytest.approx(p.probabilities["click"]) for p in only_click)
    with pytest.raises(ValueError, match="candidate feature 'item_genre' is missing"):
        TopItemSelector.from_saved_model(base).select(user, [1, 2, 3])


def test_select_top_k_signature_equals_the_python_selector_with_reranking(exported):
    model, base, _, batch, _ = exported
    user = {"user_id": int(batch["user_id"][0]), "user_segment": int(batch["user_segment"][0])}
    items = batch["item_id"].numpy()
    genres = batch["item_genre"].numpy()
    cands = {"item_id": items.tolist(), "item_genre": genres.tolist()}
    ages = np.arange(len(items), dtype=np.float32)[::-1]  # the last candidates are fresh
    request = dict(
        k=10,
        exclude=items[:2].tolist(),
        not_interested=items[2:3].tolist(),
        item_age=ages,
        options=dict(
            diversity_lambda=0.5,
            similarity_threshold=0.95,
            category_cap=2,
            freshness_weight=0.3,
            freshness_half_life=5.0,
        ),
    )
    in_memory = TopItemSelector.from_estimator(model).rank(user, cands, **request)
    exported_ = TopItemSelector.from_saved_model(base).rank(user, cands, **request)
    assert [p.item_id for p in in_memory.picks] == [p.item_id for p in exported_.picks]
    np.testing.assert_allclose(
        [p.score for p in in_memory.picks], [p.score for p in exported_.picks], rtol=1e-5
    )
    assert in_memory.events == exported_.events
    picked = [p.item_id for p in exported_.picks]
    assert len(picked) == 10
    by_id = dict(zip(items.tolist(), genres.tolist(), strict=False))
    assert max(np.unique([by_id[i] for i in picked], return_counts=True)[1]) <= 2
    assert not set(picked) & set(items[:3].tolist())
    actions = {e.action for e in exported_.events}
    assert {"excluded", "not_interested", "category_cap", "moved"} <= actions
    plain = TopItemSelector.from_saved_model(base).select(user, cands, k=10)
    assert [p.item_id for p in plain] != picked  # the re-ranking changed the list
    assert all(p.base_rank == r for r, p in enumerate(plain))
