"""Ratings data: reading triples, estimated propensities, and a ratings dataset with a
random test trained by every estimator."""

import os

import numpy as np
import pytest

from tfrs_debias.cli import main
from tfrs_debias.data import GroundTruth
from tfrs_debias.data.sources.ratings import estimate_propensities, read_triples
from tfrs_debias.models import MODEL_NAMES, REGISTRY
from tfrs_debias.schema import ImpressionSchema


def _write(path, rows, sep=" "):
    path.write_text("".join(sep.join(str(v) for v in r) + "\n" for r in rows))
    return str(path)


def test_read_triples_formats_and_errors(tmp_path):
    a = _write(tmp_path / "a.txt", [(1, 2, 5), (1, 3, 1)], sep="\t")
    b = _write(tmp_path / "b.csv", [("user", "item", "rating"), (1, 2, 5), (1, 3, 1)], sep=",")
    for path in (a, b):
        u, i, r = read_triples(path)
        assert u.tolist() == [1, 1] and i.tolist() == [2, 3] and r.tolist() == [5.0, 1.0]
    bad = _write(tmp_path / "bad.txt", [(1, 2, 5), (1, "x", 3)])
    with pytest.raises(ValueError, match=r"bad.txt: line 2: non-numeric field"):
        read_triples(bad)
    short = _write(tmp_path / "short.txt", [(1, 2)])
    with pytest.raises(ValueError, match=r"short.txt: line 1: expected 'user item rating'"):
        read_triples(short)
    huge = _write(tmp_path / "huge.txt", [(1, 2, 5), (99999999999999999999999, 3, 1)])
    with pytest.raises(ValueError, match=r"huge.txt: line 2: user id 9+ does not fit in int64"):
        read_triples(huge)
    # A garbage first line is an error, not a header dropped in silence; a header is
    # the column names only.
    garbage = _write(tmp_path / "garbage.txt", [("1x", "2", "5"), (1, 3, 1)])
    with pytest.raises(ValueError, match=r"garbage.txt: line 1: non-numeric field"):
        read_triples(garbage)
    named = _write(tmp_path / "named.csv", [("userId", "movieId", "rating", "ts"), (1, 2, 4, 9)])
    assert read_triples(named)[2].tolist() == [4.0]


def test_ratings_with_random_test_every_estimator(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    like = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))
    train_rows, test_rows = [], []
    for u in range(n_users):
        shown = np.argsort(-(like[u] + rng.normal(size=n_items)))[:15]  # biased policy
        train_rows += [(u, i, 5 if like[u, i] > 0.5 else 2) for i in shown]
        rand = rng.choice(n_items, 5, replace=False)  # random test items
        test_rows += [(u, i, 5 if like[u, i] > 0.5 else 2) for i in rand]
    out = str(tmp_path / "data")
    assert (
        main(
            [
                "ratings",
                "--train",
                _write(tmp_path / "train.txt", train_rows),
                "--test",
                _write(tmp_path / "test.txt", test_rows, sep=","),
                "--out",
                out,
                "--no-progress",
            ]
        )
        == 0
    )
    schema = ImpressionSchema.load(os.path.join(out, "schema.json"))
    assert not schema.bias_features and schema.tasks == ("click",)
    truth = GroundTruth.load(out)
    assert truth.candidates.shape == (n_users, 5)
    trainable = [n for n in MODEL_NAMES if REGISTRY[n].unsupported(schema) is None]
    assert "dual_learning" not in trainable  # no slates, no bias features
    for name in trainable:
        run = str(tmp_path / name)
        assert (
            main(
                [
                    "train",
                    "--train-files",
                    os.path.join(out, "train-*"),
                    "--model",
                    name,
                    "--out",
                    run,
                    "--epochs",
                    "1",
                    "--quiet",
                ]
            )
            == 0
        )
        assert main(["export", "--run", run, "--out", str(tmp_path / "models" / name)]) == 0
    assert (
        main(
            [
                "evaluate",
                "--data",
                out,
                "--k",
                "5",
                "--out",
                str(tmp_path / "report"),
                *[a for n in trainable for a in ("--model", f"{n}={tmp_path}/models/{n}")],
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "| anchored_factorized |" in text and "factorized click: logged AUC" in text


def test_estimated_propensities_by_hand():
    items = np.array([1, 1, 1, 1, 2])  # item 1 seen 4 times, item 2 once
    labels = np.array([1, 1, 0, 0, 1])
    p, method = estimate_propensities(items, labels, power=0.5)
    np.testing.assert_allclose(p, [1, 1, 1, 1, 0.5])  # (1/4)^0.5 = 0.5
    assert method == "item popularity^0.5"
    # Slice: 1 positive in 4 -> Laplace P(y=1) = 2/6, P(y=0) = 4/6; observed P(y=1) = 3/5.
    # Factor y=1: (3/5)/(2/6) = 1.8, y=0: (2/5)/(4/6) = 0.6; times popularity, max -> 1.
    p, method = estimate_propensities(items, labels, np.array([1, 0, 0, 0]), power=0.5)
    raw = np.array([1.8, 1.8, 0.6, 0.6, 0.9])
    np.testing.assert_allclose(p, raw / 1.8, rtol=1e-6)
    assert "naive-Bayes" in method and "4 slice rows" in method
