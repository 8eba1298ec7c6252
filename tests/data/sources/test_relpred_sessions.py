import json

import pytest

from tfrs_debias.data.sources.relpred_sessions import RelpredSessions

LINES = "7_1\t11,12,13 : 12 , 99 , 12;  7_1\t13,11,12 :;\n8_2\t21,22,23 : 23 , 21\n"


def _write(tmp_path, text):
    path = tmp_path / "trainSample"
    path.write_text(text)
    return str(path)


def test_sessions_keep_rank_order_and_shown_clicks_once(tmp_path):
    s = RelpredSessions.read(_write(tmp_path, LINES))
    assert len(s) == 3
    assert s.queries == ["7_1", "7_1", "8_2"]
    assert s.slates == [["11", "12", "13"], ["13", "11", "12"], ["21", "22", "23"]]
    # 99 was not shown; 12 clicked twice is one click; clicks follow rank order.
    assert s.clicked == [["12"], [], ["21", "23"]]


def test_jsonl_rows_are_what_convert_reads(tmp_path):
    s = RelpredSessions.read(_write(tmp_path, LINES))
    out = tmp_path / "sessions.jsonl"
    s.write_jsonl(str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[2] == {
        "session": 2,
        "query": "8_2",
        "docs": ["21", "22", "23"],
        "clicked": ["21", "23"],
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("7_1 11,12 : 12\n", "line 1, session 1: expected 'query<TAB>docs : clicks'"),
        ("7_1\t11,12 : 12; 7_1\t11,,12 :\n", "line 1, session 2: empty document id"),
        ("7_1\t11,12 :\n7_1\t11,11 :\n", "line 2, session 1: a document is shown twice"),
        ("\n ; \n", "no sessions"),
    ],
)
def test_bad_sessions_are_named_by_line_and_session(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        RelpredSessions.read(_write(tmp_path, text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: session file not found"):
        RelpredSessions.read(str(tmp_path / "nope"))
