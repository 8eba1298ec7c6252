import numpy as np
import pytest

from tfrs_debias.click_models import (
    ClickLog,
    DocumentCTR,
    RankCTR,
)


def test_rank_and_document_ctr_by_hand():
    cols = {
        "q": np.array([1, 1, 1, 2]),
        "d": np.array([7, 7, 8, 7]),
        "r": np.array([0, 0, 1, 1]),
        "c": np.array([1, 0, 0, 1]),
    }
    log = ClickLog.from_columns(cols, "q", "d", "r", "c")
    np.testing.assert_allclose(RankCTR().fit(log).rate[:, 0], [0.5, 0.5])
    doc = DocumentCTR(prior_strength=0).fit(log)
    assert doc.pair_rate[(1, 7)] == 0.5 and doc.pair_rate[(2, 7)] == 1.0
    assert doc.doc_rate[7] == pytest.approx(2 / 3)
    unseen = ClickLog.from_columns({k: v[:1] + 100 for k, v in cols.items()}, "q", "d", "r", "c")
    assert doc.predict(unseen)[0] == pytest.approx(0.5)  # global rate 2/4
