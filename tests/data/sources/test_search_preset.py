"""The search preset reproduces the structure of the real search click log
(PyClick's Yandex sample; `tfrs_debias.click_models.log_statistics` has its figures)
within the bands stated here."""

import numpy as np
import pytest

from tfrs_debias.click_models.log_statistics import log_statistics
from tfrs_debias.data import ImpressionSimulator, LogDirectory, SimulatorConfig
from tfrs_debias.data.io.reader import read_columns

REAL_CTR = [0.257, 0.249, 0.170, 0.154, 0.106, 0.073, 0.069, 0.047, 0.050, 0.045]


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    folder = LogDirectory(str(tmp_path_factory.mktemp("search") / "data"))
    ImpressionSimulator(SimulatorConfig.search()).write(folder.path, progress=False)
    files = folder.require("train") + folder.require("valid") + folder.require("test")
    c = read_columns(files, folder.schema())
    return log_statistics(c["user_id"], c["item_id"], c["position"], c["click"], c["request_id"])


def test_pairs_mostly_keep_their_rank_but_move_often_enough_to_identify_the_curve(stats):
    assert abs(stats["modal_rank_share"] - 0.571) <= 0.05  # preset 0.58
    assert 0.45 <= stats["multi_rank_pairs"] <= 0.80  # real 0.52, preset 0.72


def test_few_queries_with_skewed_traffic_and_tens_of_documents_each(stats):
    assert stats["sessions"] == 35_000
    assert 15 <= stats["queries"] <= 20  # real 20, preset 17
    assert 0.35 <= stats["top_query_share"] <= 0.75  # real 0.57, preset 0.42
    assert 25 <= stats["docs_per_query"] <= 60  # real 51, preset 33


def test_ctr_falls_with_rank_from_the_real_logs_level(stats):
    ctr = np.asarray(stats["ctr_by_rank"])
    assert abs(ctr[0] - REAL_CTR[0]) <= 0.05  # preset 0.293
    assert ctr[0] > ctr[2] > ctr[5] > ctr[9]
    assert 0.05 <= ctr[9] / ctr[0] <= 0.3  # real 0.18, preset 0.08
    shares = stats["clicks_per_session"]
    assert abs(shares[0] - 0.338) <= 0.06 and abs(shares[1] - 0.407) <= 0.03


def test_the_old_preset_shape_fails_these_bands_a_negative_control(tmp_path):
    # Every query's own 10 documents re-ranked with heavy noise: every pair at every rank.
    old = SimulatorConfig.search(
        num_users=300, num_items=3000, candidates_per_request=10, candidate_pool=10,
        truth_candidates=10, num_test_users=300, num_requests=3000,
    )  # fmt: skip
    old = SimulatorConfig.from_dict(
        {**old.to_dict(), "policy": {"relevance": 1.0, "popularity": 0.3, "noise": 2.0}}
    )
    folder = LogDirectory(str(tmp_path / "old"))
    ImpressionSimulator(old).write(folder.path, progress=False)
    c = read_columns(folder.require("train"), folder.schema())
    s = log_statistics(c["user_id"], c["item_id"], c["position"], c["click"], c["request_id"])
    assert abs(s["modal_rank_share"] - 0.571) > 0.05
