import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfrs_debias.cli import main
from tfrs_debias.data import validate_files
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.data.sources.log_converter import (
    ColumnMapping,
    ConversionError,
    LogConverter,
    read_rows,
)
from tfrs_debias.schema import ImpressionSchema

ROWS = [  # one row per impression, ranks 1-based as search logs write them
    {"uid": 7, "doc": "d1", "rank": 1, "dev": "tablet", "clicked": 1, "q": 100, "p": 0.5},
    {"uid": 7, "doc": "d2", "rank": 2, "dev": "tablet", "clicked": 0, "q": 100, "p": 0.25},
    {"uid": 8, "doc": "d1", "rank": 1, "dev": "phone", "clicked": 0, "q": 101, "p": 1.0},
]


MAPPING = ColumnMapping(
    user_id="uid",
    item_id="item_id=doc",
    labels=("click=clicked",),
    position="position=rank",
    bias=("device=dev",),
    request_id="q",
    propensity="p",
    one_based=True,
)


def _write(tmp_path, fmt, rows, name="logs"):
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        keys = list(rows[0])
        lines = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), str(path))
    return str(path)


def _convert(path, out, mapping=MAPPING, **kw):
    converter = LogConverter(mapping, valid_fraction=0.0, test_fraction=0.0, **kw)
    return converter.convert(path, str(out), progress=False)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_impression_rows_round_trip(tmp_path, fmt):
    schema, written = _convert(_write(tmp_path, fmt, ROWS), tmp_path / "out")
    roles = {f.name: (f.role, f.dtype) for f in schema.features}
    assert roles == {
        "uid": ("user_id", "int64"),
        "item_id": ("item_id", "string"),
        "click": ("label", "int64"),
        "position": ("bias", "int64"),
        "device": ("bias", "string"),
        "q": ("request_id", "int64"),
        "p": ("propensity", "float32"),
    }
    assert ImpressionSchema.load(str(tmp_path / "out" / "schema.json")) == schema
    assert validate_files(written["train"], schema).ok
    cols = read_columns(written["train"], schema)
    assert cols["uid"].tolist() == [7, 7, 8]
    assert cols["item_id"].tolist() == [b"d1", b"d2", b"d1"]
    assert cols["position"].tolist() == [0, 1, 0]  # 1-based ranks stored 0-based
    assert cols["device"].tolist() == [b"tablet", b"tablet", b"phone"]
    assert cols["click"].tolist() == [1, 0, 0]
    np.testing.assert_allclose(cols["p"], [0.5, 0.25, 1.0])


SLATES = [
    {"session": "s1", "user": 3, "shown": [11, 12, 13], "clicks": [12], "ranks": [2]},
    {"session": "s2", "user": 4, "shown": [13, 11], "clicks": [], "ranks": []},
    {"session": "s3", "user": 3, "shown": [12, 14, 11, 15], "clicks": [12, 15], "ranks": [1, 4]},
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("clicks", ["items", "ranks"])
def test_slate_rows_become_impressions(tmp_path, fmt, clicks):
    rows = SLATES
    if fmt == "csv":  # lists in cells, as spreadsheets write them
        rows = [
            {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()}
            for r in SLATES
        ]
    mapping = ColumnMapping(
        user_id="user",
        slate_items="shown",
        request_id="session",
        clicked_items="clicks" if clicks == "items" else None,
        clicked_ranks="ranks" if clicks == "ranks" else None,
        one_based=True,
    )
    schema, written = _convert(_write(tmp_path, fmt, rows), tmp_path / "out", mapping)
    assert schema.tasks == ("click",) and schema.request_id.name == "session"
    assert validate_files(written["train"], schema).ok
    cols = read_columns(written["train"], schema)
    assert cols["item_id"].tolist() == [11, 12, 13, 13, 11, 12, 14, 11, 15]
    assert cols["position"].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3]
    assert cols["click"].tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 1]
    assert cols["user"].tolist() == [3, 3, 3, 4, 4, 3, 3, 3, 3]
    assert cols["session"].tolist() == [b"s1"] * 3 + [b"s2"] * 2 + [b"s3"] * 4


def test_splits_keep_slates_whole_and_follow_the_fractions(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        {
            "session": i,
            "user": int(rng.integers(50)),
            "shown": list(range(i % 7, i % 7 + 5)),
            "clicks": [i % 7],
        }
        for i in range(2000)
    ]
    mapping = ColumnMapping(
        user_id="user", slate_items="shown", clicked_items="clicks", request_id="session"
    )
    converter = LogConverter(mapping, valid_fraction=0.1, test_fraction=0.2)
    _, written = converter.convert(
        _write(tmp_path, "jsonl", rows), str(tmp_path / "o"), progress=False
    )
    schema = ImpressionSchema.load(str(tmp_path / "o" / "schema.json"))
    sessions = {s: set(read_columns(f, schema)["session"].tolist()) for s, f in written.items()}
    assert not (sessions["train"] & sessions["test"]) and not (sessions["valid"] & sessions["test"])
    assert not (sessions["train"] & sessions["valid"])
    assert len(sessions["test"]) == pytest.approx(400, abs=60)
    assert len(sessions["valid"]) == pytest.approx(200, abs=45)


BAD = [
    ("csv", 2, {"clicked": 2}, "line 4, column 'clicked': label must be 0 or 1, got '2'"),
    ("jsonl", 1, {"rank": 0}, "line 2, column 'rank': rank must be an integer >= 1, got 0"),
    ("jsonl", 2, {"p": 0.0}, "line 3, column 'p': propensity must be in (0, 1], got 0.0"),
    ("csv", 1, {"doc": ""}, "line 3, column 'doc': empty value"),
    ("parquet", 2, {"dev": None}, "row 2, column 'dev': empty value"),
    ("jsonl", 0, {"uid": None}, "line 1, column 'uid': empty value"),
]


@pytest.mark.parametrize("fmt, index, change, message", BAD)
def test_a_corrupted_line_is_named(tmp_path, capsys, fmt, index, change, message):
    rows = [dict(r) for r in ROWS]
    rows[index].update(change)
    path = _write(tmp_path, fmt, rows)
    with pytest.raises(ConversionError, match="column"):
        _convert(path, tmp_path / "lib")
    out = tmp_path / "out"
    args = ["convert", "--input", path, "--out", str(out), "--user-id", "uid", "--no-progress"]
    args += ["--item-id", "item_id=doc", "--label", "click=clicked", "--position", "rank"]
    args += ["--bias", "dev", "--request-id", "q", "--propensity", "p", "--one-based"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{path}: {message}" in err and "Traceback" not in err
    assert not out.exists() or not os.listdir(out)  # nothing written


def test_slate_and_file_level_problems_are_named(tmp_path):
    mapping = ColumnMapping(user_id="user", slate_items="shown", clicked_items="clicks")
    rows = [dict(SLATES[0]), dict(SLATES[1], clicks=[99])]
    with pytest.raises(ConversionError, match=r"line 2, column 'clicks': clicked items \['99'\]"):
        _convert(_write(tmp_path, "jsonl", rows), tmp_path / "a", mapping)
    by_rank = ColumnMapping(user_id="user", slate_items="shown", clicked_ranks="ranks")
    rows = [dict(SLATES[0], ranks=[3])]  # 0-based: rank 3 is past a 3-item slate
    with pytest.raises(ConversionError, match=r"line 1, column 'ranks': clicked rank 3"):
        _convert(_write(tmp_path, "jsonl", rows), tmp_path / "b", by_rank)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(SLATES[0]) + "\n{not json\n")
    with pytest.raises(ConversionError, match=r"broken.jsonl: line 2: not JSON"):
        _convert(str(broken), tmp_path / "c", mapping)
    missing = ColumnMapping(user_id="person", slate_items="shown", clicked_items="clicks")
    with pytest.raises(ConversionError, match=r"line 1: no column 'person'"):
        _convert(_write(tmp_path, "jsonl", SLATES), tmp_path / "d", missing)
    with pytest.raises(ValueError, match="exactly one of clicked_items or clicked_ranks"):
        ColumnMapping(slate_items="shown")
    rows = list(read_rows(_write(tmp_path, "csv", ROWS)))
    assert rows[0][0].endswith("logs.csv: line 2") and rows[0][1]["doc"] == "d1"


def test_convert_then_train_on_a_tablet_log(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = []
    for q in range(400):
        shown = rng.choice(60, 8, replace=False).tolist()
        clicks = [d for r, d in enumerate(shown) if rng.random() < 0.5 / (r + 1) + 0.05 * (d % 3)]
        rows.append(
            {
                "qid": q,
                "user": int(rng.integers(40)),
                "device": "tablet",
                "docs": shown,
                "clicked": clicks,
            }
        )
    data = str(tmp_path / "data")
    args = ["convert", "--input", _write(tmp_path, "jsonl", rows), "--out", data]
    args += ["--user-id", "user", "--slate-items", "docs", "--clicked-items", "clicked"]
    args += ["--request-id", "qid", "--bias", "device", "--no-progress"]
    assert main(args) == 0
    assert "device (bias, string)" in capsys.readouterr().out
    assert main(["validate", "--files", os.path.join(data, "train-*")]) == 0
    run = str(tmp_path / "run")
    args = ["train", "--train-files", os.path.join(data, "train-*"), "--out", run, "--quiet"]
    args += ["--valid-files", os.path.join(data, "valid-*"), "--epochs", "1"]
    assert main(args) == 0
    with open(os.path.join(run, "metrics.json")) as fh:
        assert json.load(fh)["epochs_run"] == 1
