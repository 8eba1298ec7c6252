import numpy as np
import pytest

from tfrs_debias.evaluation import (
    gap_closed,
    item_bucket,
    user_bucket,
)


def test_buckets_and_gap_by_hand():
    assert user_bucket(np.array([0, 10, 11, 100, 101])).tolist() == [
        "new",
        "new",
        "casual",
        "casual",
        "power",
    ]
    counts = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 100]])
    buckets = item_bucket(counts, (0.5, 0.9))  # quantiles 5.5 and 18.1
    assert buckets.tolist() == [["tail"] * 5 + ["torso"] * 4 + ["head"]]
    assert gap_closed(0.7, 0.5, 0.75) == pytest.approx(0.8)
    assert gap_closed(0.7, 0.5, 0.5) is None
