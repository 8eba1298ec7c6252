"""Search sessions in the Yandex relevance-prediction layout (the WSCD 2011 sample that
PyClick ships as ``examples/data/trainSample``), as slate rows for ``convert``.

Each line holds one query key and its sessions, separated by ``;``::

    98435_1<TAB>d1,d2,...,d10 : c1 , c2;  98435_1<TAB>d1,...,d10 :;  ...

A session is ``query<TAB>shown docs in rank order : clicked docs``. A clicked document
that was not shown is ignored; a document clicked twice is one click. `RelpredSessions`
reads the file (errors name the line and the session) and writes JSON Lines that
``tfrs-debias convert --slate-items docs --clicked-items clicked --request-id session
--user-id query`` turns into impression logs.
"""

from __future__ import annotations

import dataclasses
import json

from tfrs_debias.data.io.files import is_file, text_lines


@dataclasses.dataclass
class RelpredSessions:
    """The sessions of one file, in file order.

    Attributes:
      queries: each session's query key (``98435_1``).
      slates: each session's shown documents, in rank order.
      clicked: each session's clicked documents (shown ones only, each once).
    """

    queries: list[str]
    slates: list[list[str]]
    clicked: list[list[str]]

    @classmethod
    def read(cls, path: str) -> RelpredSessions:
        if not is_file(path):
            raise FileNotFoundError(f"{path}: session file not found")
        out = cls([], [], [])
        for lineno, line in enumerate(text_lines(path), start=1):
            for number, text in enumerate(line.split(";"), start=1):
                if text.strip():
                    out._add(text.strip(), f"{path}: line {lineno}, session {number}")
        if not out.queries:
            raise ValueError(f"{path}: no sessions")
        return out

    def _add(self, text: str, where: str) -> None:
        query, tab, rest = text.partition("\t")
        shown, colon, clicks = rest.partition(":")
        if not tab or not colon or not query.strip():
            raise ValueError(f"{where}: expected 'query<TAB>docs : clicks', got {text[:60]!r}")
        docs = [d.strip() for d in shown.split(",")]
        if not all(docs):
            raise ValueError(f"{where}: empty document id in {shown.strip()[:60]!r}")
        if len(set(docs)) != len(docs):
            raise ValueError(f"{where}: a document is shown twice in {shown.strip()[:60]!r}")
        clicked = {c.strip() for c in clicks.split(",") if c.strip()}
        self.queries.append(query.strip())
        self.slates.append(docs)
        self.clicked.append([d for d in docs if d in clicked])

    def __len__(self) -> int:
        return len(self.queries)

    def write_jsonl(self, path: str) -> None:
        """One row per session: ``{"session", "query", "docs", "clicked"}``."""
        with open(path, "w") as fh:
            for i, (q, docs, clicks) in enumerate(
                zip(self.queries, self.slates, self.clicked, strict=True)
            ):
                row = {"session": i, "query": q, "docs": docs, "clicked": clicks}
                fh.write(json.dumps(row) + "\n")
