"""Finding impression-log files and telling their compression."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

_GZIP_MAGIC = b"\x1f\x8b"


def expand_files(patterns: str | Sequence[str]) -> list[str]:
    """Sorted files matching one glob or several; a pattern that matches nothing is an error."""
    if isinstance(patterns, str | os.PathLike):
        patterns = [os.fspath(patterns)]
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(p for p in glob.glob(os.fspath(pattern)) if os.path.isfile(p))
        if not matched:
            raise FileNotFoundError(f"no files match {os.fspath(pattern)!r}")
        files.extend(matched)
    return sorted(dict.fromkeys(files))


def compression_of(path: str) -> str:
    """``"GZIP"`` if ``path`` starts with the gzip magic bytes, else ``""`` (plain TFRecord)."""
    with open(path, "rb") as fh:
        return "GZIP" if fh.read(2) == _GZIP_MAGIC else ""


def common_compression(files: Sequence[str]) -> str:
    """The one compression all ``files`` share; mixing gzip and plain files is an error."""
    kinds = {f: compression_of(f) for f in files}
    distinct = set(kinds.values())
    if len(distinct) > 1:
        gz = [f for f, k in kinds.items() if k]
        plain = [f for f, k in kinds.items() if not k]
        raise ValueError(
            f"files mix gzip ({gz[0]!r}, ...) and plain TFRecord ({plain[0]!r}, ...); "
            "read them as two datasets"
        )
    return distinct.pop() if distinct else ""
