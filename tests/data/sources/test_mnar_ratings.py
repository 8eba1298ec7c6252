"""`MnarRatingsSimulator`: its training data is missing not at random."""

import numpy as np
import pytest

from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.data.sources.mnar_ratings import MnarRatingsConfig, MnarRatingsSimulator


def test_mnar_simulator_is_missing_not_at_random(tmp_path):
    sim = MnarRatingsSimulator(MnarRatingsConfig(num_users=300, num_items=200, seed=1))
    (tu, ti, tr), (eu, ei, er), prob = sim.simulate()
    ratings = sim.ratings()
    assert set(np.unique(ratings)) == {1, 2, 3, 4, 5}
    assert (ratings >= 4).mean() == pytest.approx(0.15, abs=0.01)
    assert len(tu) / ratings.size == pytest.approx(0.03, rel=0.1)  # density
    assert (tr >= 4).mean() > 2 * (er >= 4).mean()  # self-selection: liked items rated more
    assert len(eu) == 300 * 10 and (er >= 4).mean() == pytest.approx(0.15, abs=0.03)
    out = str(tmp_path / "mnar")
    sim.write(out, slice_fraction=0.1, progress=False)
    folder = LogDirectory(out)
    assert set(folder.splits) == {"train", "valid", "test", "random_slice"}
    cols = read_columns(folder.require("train"), folder.schema())
    assert cols["propensity"].min() > 0 and cols["propensity"].max() == pytest.approx(1.0)
    test = read_columns(folder.require("test"), folder.schema())
    assert (test["propensity"] == 1).all()
    slice_users = set(read_columns(folder.require("random_slice"), folder.schema())["user_id"])
    assert not slice_users & set(test["user_id"].tolist())
    assert "naive-Bayes" in folder.truth().metadata["propensity"]
