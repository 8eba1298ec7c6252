import numpy as np
import pytest

from tfrs_debias.cli import main
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.data.sources.movielens import (
    MovieLensConfig,
    MovieLensConverter,
    detect_format,
    read_ratings,
    read_tfds_ratings,
)

ROWS = [(1, 10, 5.0, 300), (1, 20, 3.0, 100), (2, 10, 4.0, 200), (3, 30, 1.0, 50)]


def _write(path, fmt, rows=ROWS):
    if fmt == "ml-100k":
        text = "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in rows)
    elif fmt == "ml-1m":
        text = "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in rows)
    else:
        text = "userId,movieId,rating,timestamp\n" + "".join(
            f"{u},{i},{r},{t}\n" for u, i, r, t in rows
        )
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "fmt, name", [("ml-100k", "u.data"), ("ml-1m", "ratings.dat"), ("ml-latest", "ratings.csv")]
)
def test_each_format_reads_the_same(tmp_path, fmt, name):
    path = _write(tmp_path / name, fmt)
    assert detect_format(path) == fmt
    r = read_ratings(path)
    np.testing.assert_array_equal(r.user, [1, 1, 2, 3])
    np.testing.assert_array_equal(r.item, [10, 20, 10, 30])
    np.testing.assert_array_equal(r.rating, [5, 3, 4, 1])
    np.testing.assert_array_equal(r.timestamp, [300, 100, 200, 50])


def test_bad_files_name_file_and_line(tmp_path):
    bad = tmp_path / "u.data"
    bad.write_text("1\t2\t5\t10\n1\t2\tfive\t11\n")
    with pytest.raises(ValueError, match=r"u.data: line 2: non-numeric field"):
        read_ratings(str(bad))
    short = tmp_path / "r.dat"
    short.write_text("1::2::5::10\n1::2::5\n")
    with pytest.raises(ValueError, match=r"r.dat: line 2: expected 4 fields, got 3"):
        read_ratings(str(short))
    odd = tmp_path / "odd.txt"
    odd.write_text("hello world\n")
    with pytest.raises(ValueError, match=r"odd.txt: line 1: unrecognised ratings format"):
        read_ratings(str(odd))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        read_ratings(str(tmp_path / "missing.csv"))


def test_tfds_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared under .*Nothing is downloaded"):
        read_tfds_ratings("movielens/100k-ratings", data_dir=str(tmp_path))


def _synthetic_ratings(tmp_path, n_users=60, n_items=80, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i in rng.choice(n_items, size=rng.integers(20, 50), replace=False):
            rows.append((u, int(i) + 1, float(rng.integers(1, 6)), int(rng.integers(1e6))))
    return _write(tmp_path / "u.data", "ml-100k", rows)


def test_conversion_outputs_and_truth(tmp_path):
    ratings = read_ratings(_synthetic_ratings(tmp_path))
    conv = MovieLensConverter(MovieLensConfig(seed=1))
    splits, truth = conv.convert(ratings, progress=False)
    assert set(splits) == {"train", "valid", "test", "full_train", "full_valid"} | {
        "oracle_train",
        "oracle_valid",
        "examined_train",
        "examined_valid",
    }
    train = splits["train"]
    assert set(np.unique(train["position"])) == set(range(10))
    # Every logged (user, item) pair is a real rating outside the user's held-out truth.
    rated = set(zip(ratings.user.tolist(), ratings.item.tolist(), strict=True))
    assert set(zip(train["user_id"].tolist(), train["item_id"].tolist(), strict=True)) <= rated
    for k, u in enumerate(truth.users):
        held = set(truth.candidates[k][truth.mask[k]].tolist())
        logged = set(train["item_id"][train["user_id"] == u].tolist())
        assert held and not held & logged
    # Relevance follows the rating: 5 stars > 3 stars > 1 star.
    rel = conv.relevance(np.array([5.0, 3.0, 1.0]))["click"]
    assert rel[0] > 0.9 and rel[0] > rel[1] > rel[2]
    assert np.isnan(truth.relevance["click"][~truth.mask]).all()


def test_cli_movielens_writes_a_dataset(tmp_path, capsys):
    path = _synthetic_ratings(tmp_path)
    out = str(tmp_path / "ml")
    assert main(["movielens", "--ratings", path, "--out", out, "--no-progress"]) == 0
    assert main(["validate", "--files", f"{out}/train*"]) == 0
    truth = GroundTruth.load(out)
    assert truth.examination.shape == (3, 10)
    assert main(["movielens", "--out", out]) == 2
    assert "exactly one of --ratings" in capsys.readouterr().err
