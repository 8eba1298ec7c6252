"""Finding impression-log files and telling their compression, through ``tf.io.gfile``
(so local paths and any filesystem TensorFlow supports — ``gs://``, ``hdfs://``,
``ram://`` — work the same)."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Sequence

import numpy as np

from tfrs_debias.backend import tf

_GZIP_MAGIC = b"\x1f\x8b"


def expand_files(patterns: str | os.PathLike | Sequence[str]) -> list[str]:
    """Sorted files matching one glob or several; a pattern that matches nothing is an error."""
    if isinstance(patterns, str | os.PathLike):
        patterns = [os.fspath(patterns)]
    files: list[str] = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        matched = sorted(p for p in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(p))
        if not matched:
            raise FileNotFoundError(f"no files match {pattern!r}")
        files.extend(matched)
    return sorted(dict.fromkeys(files))


def compression_of(path: str) -> str:
    """``"GZIP"`` if ``path`` starts with the gzip magic bytes, else ``""`` (plain TFRecord)."""
    with tf.io.gfile.GFile(path, "rb") as fh:
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


def finite(value):
    """``value`` with NaN/inf floats (numpy scalars too) replaced by None: valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return finite(value.item())
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def remove_tree(path: str) -> None:
    """Deletes folder ``path`` and everything under it, if it is there."""
    if tf.io.gfile.exists(path):
        with contextlib.suppress(tf.errors.NotFoundError):
            tf.io.gfile.rmtree(path)


def move_tree(src: str, dst: str) -> None:
    """Moves folder ``src`` to ``dst`` (which must not exist): one atomic rename on
    filesystems that rename folders (local, HDFS); a copy then delete on object stores
    and ``ram://``, where a folder is only a prefix of its files' names."""
    if not is_url(src):
        tf.io.gfile.rename(src, dst)
        return
    stack = [src]
    while stack:
        folder = stack.pop()
        for name in tf.io.gfile.listdir(folder):
            path = os.path.join(folder, name.rstrip("/"))
            target = dst + path[len(src) :]
            if tf.io.gfile.isdir(path):
                tf.io.gfile.makedirs(target)
                stack.append(path)
            else:
                tf.io.gfile.makedirs(os.path.dirname(target))
                with tf.io.gfile.GFile(path, "rb") as fin, tf.io.gfile.GFile(target, "wb") as fout:
                    fout.write(fin.read())
    remove_tree(src)


def check_writable(folder: str) -> None:
    """Creates ``folder`` and writes and removes a probe file in it, so a long job fails
    at once, in one line, on a read-only or unreachable output folder."""
    probe = os.path.join(folder, f".write-test-{os.getpid()}")
    try:
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(probe, "w") as fh:
            fh.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as err:
        message = (getattr(err, "message", None) or str(err)).strip().splitlines()[0]
        raise OSError(f"{folder}: cannot write here ({message})") from None


def write_json(path: str, data, indent: int = 2) -> None:
    """Writes JSON atomically (temporary file, then rename) through ``tf.io.gfile``;
    NaN/inf become null."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as fh:
        fh.write(json.dumps(finite(data), indent=indent, allow_nan=False) + "\n")
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _named(path: str, err: tf.errors.OpError) -> OSError:
    """TensorFlow's filesystem error as an ``OSError`` naming ``path``, in one line."""
    message = (err.message or type(err).__name__).strip().splitlines()[0]
    return OSError(f"{path}: {message}")


def is_url(path: str) -> bool:
    """Whether ``path`` names a filesystem by its scheme (``gs://``, ``hdfs://``,
    ``ram://``...) rather than a local path."""
    return "://" in path


def absolute(path: str) -> str:
    """A local path made absolute; a URL as it is (``abspath`` would make
    ``gs://b/x`` into ``/cwd/gs:/b/x``)."""
    return path if is_url(path) else os.path.abspath(path)


def is_file(path: str) -> bool:
    """Whether ``path`` is a file, on any filesystem ``tf.io.gfile`` reaches; a
    filesystem that cannot be asked (no network, no credentials) is an ``OSError``
    naming ``path``."""
    try:
        return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)
    except tf.errors.OpError as err:
        raise _named(path, err) from None


def text_lines(path: str) -> Iterator[str]:
    """The lines of a UTF-8 text file, undecodable bytes replaced, through
    ``tf.io.gfile`` (``gs://``, ``hdfs://``, ``ram://``...); a local path is read with
    the built-in ``open``: the same lines, where ``GFile`` costs a call into TensorFlow
    per line (2M lines: 2.4 s against 0.14 s)."""
    if not is_url(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from fh
        return
    try:
        with tf.io.gfile.GFile(path, "rb") as fh:
            for line in fh:
                yield line.decode("utf-8", errors="replace")
    except tf.errors.OpError as err:
        raise _named(path, err) from None


def read_json(path: str):
    with tf.io.gfile.GFile(path, "r") as fh:
        return json.load(fh)
