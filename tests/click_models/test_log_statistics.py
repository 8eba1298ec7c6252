import pytest

from tfrs_debias.click_models.log_statistics import log_statistics


def test_statistics_by_hand():
    # Sessions: s0 (q "a": docs x, y at ranks 0, 1; clicks 1, 1), s1 (q "a": y, x;
    # clicks 0, 0), s2 (q "a": x, y; clicks 0, 1), s3 (q "b": z, w; clicks 1, 0).
    queries = ["a", "a", "a", "a", "a", "a", "b", "b"]
    docs = ["x", "y", "y", "x", "x", "y", "z", "w"]
    ranks = [0, 1, 0, 1, 0, 1, 0, 1]
    clicks = [1, 1, 0, 0, 0, 1, 1, 0]
    sessions = [0, 0, 1, 1, 2, 2, 3, 3]
    s = log_statistics(queries, docs, ranks, clicks, sessions)
    assert s["sessions"] == 4
    assert s["queries"] == 2
    assert s["top_query_share"] == pytest.approx(3 / 4)
    assert s["docs_per_query"] == pytest.approx(4 / 2)  # pairs (a,x) (a,y) (b,z) (b,w)
    # (a,x): ranks 0,1,0 -> modal 2 of 3; (a,y): 1,0,1 -> 2 of 3; (b,z), (b,w): 1 of 1.
    assert s["modal_rank_share"] == pytest.approx((2 + 2 + 1 + 1) / 8)
    assert s["multi_rank_pairs"] == pytest.approx(2 / 4)
    assert s["ctr_by_rank"] == pytest.approx([2 / 4, 2 / 4])
    # clicks per session: 2, 0, 1, 1 -> shares of 0/1/2/3/4+.
    assert s["clicks_per_session"] == pytest.approx([1 / 4, 2 / 4, 1 / 4, 0, 0])
