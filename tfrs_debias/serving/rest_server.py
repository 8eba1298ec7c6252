"""`ModelServer`: TF Serving's REST API over ``saved_models/NAME``, for users without a
TF Serving binary (and for tests). A client written for TF Serving works unchanged:

* ``GET  /v1/models/NAME[/versions/V]``             model status
* ``GET  /v1/models/NAME[/versions/V]/metadata``    signature defs
* ``POST /v1/models/NAME[/versions/V]:predict``     ``{"signature_name"?, "instances": [...]}``
  (row format, answered as ``{"predictions": ...}``) or ``{"inputs": ...}`` (columnar,
  answered as ``{"outputs": ...}``).

Versions are loaded and switched by a `ModelManager` (latest 2 by default, off the request
path, a new or re-exported version switched in only once loaded). Bad requests get
``{"error": "..."}`` with a 4xx code naming the input — overflowing ids, wrong JSON
types, bad headers, oversized (413) or too deeply nested bodies — and the server keeps
serving. Connections are served by a bounded pool of threads; responses go out without
Nagle delay. Binary strings may be sent as ``{"b64": "..."}``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.serving.loaded_export import list_versions
from tfrs_debias.serving.model_manager import ModelManager, VersionNotAvailable
from tfrs_debias.serving.serving_metrics import ServingMetrics

#: TF Serving's Prometheus path.
METRICS_PATH = "/monitoring/prometheus/metrics"

_VERSION = r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
_GET = re.compile(r"^/v1/models/(?P<name>[^/:]+)" + _VERSION + r"(?P<metadata>/metadata)?/?$")
_POST = re.compile(r"^/v1/models/(?P<name>[^/:]+)" + _VERSION + r":(?P<verb>[a-z]+)$")
_TF_TYPES = {
    tf.int64: "DT_INT64",
    tf.int32: "DT_INT32",
    tf.float32: "DT_FLOAT",
    tf.string: "DT_STRING",
    tf.float64: "DT_DOUBLE",
    tf.bool: "DT_BOOL",
}


class RequestError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelServer:
    """Answers TF Serving REST calls for the versions a `ModelManager` serves.

    Args:
      model_base: ``saved_models/NAME`` (integer version folders inside).
      name: the model name in URLs. Defaults to the folder name.
      keep_versions: how many of the latest versions are served. Defaults to 2.
      policy, versions: the `ModelManager` version policy (``latest``, ``all``,
        ``specific`` with ``versions``).
      poll_seconds: how often new or re-exported versions are looked for. Defaults to 1.
      labels: version labels (``{"stable": 3, "canary": 4}``) for ``/labels/L`` and
        gRPC's ``version_label``.
      split: an A/B split of users across labels (``{"stable": 90, "canary": 10}``): a
        request naming no version or label goes to the label its ``split_key`` input
        (the user id) hashes to — the same user, the same version.
      split_key: the input the split hashes. Defaults to ``user_id``.
    """

    def __init__(
        self,
        model_base: str,
        name: str | None = None,
        keep_versions: int = 2,
        policy: str = "latest",
        versions: Sequence[int] = (),
        poll_seconds: float = 1.0,
        labels: dict[str, int] | None = None,
        split: dict[str, float] | None = None,
        split_key: str = "user_id",
    ):
        self.labels: dict[str, int] = dict(labels or {})
        self.split_key = split_key
        self.split: dict[str, float] = {}
        self.model_base = os.path.abspath(model_base)
        self.name = name or os.path.basename(self.model_base.rstrip("/"))
        self.set_split(split)
        if not list_versions(self.model_base):
            raise FileNotFoundError(f"{model_base}: no integer version folders to serve")
        self.manager = ModelManager(
            self.model_base, policy, keep_versions, versions, poll_seconds=poll_seconds
        )

    #: Rows one request may score (``--max-batch``): a 200k-row request left the process
    #: ~0.5 GB larger for good (TensorFlow's allocator keeps what it took).
    max_batch: int = 50_000

    def _check_batch(self, rows: int) -> None:
        if rows > self.max_batch:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request has {rows} rows, more than the limit of {self.max_batch} "
                "(--max-batch); split it",
            )

    # -- versions ------------------------------------------------------------------
    def set_split(self, split: dict[str, float] | None) -> None:
        """Sets the A/B split (label -> weight; weights are normalised); None clears it.

        Raises:
          ValueError: a label the model does not have, or weights that are not >= 0.
        """
        if not split:
            self.split = {}
            return
        missing = sorted(set(split) - set(self.labels))
        if missing:
            raise ValueError(
                f"A/B split labels {missing} are not labels of model {self.name!r} "
                "(labels come from --model-config-file)"
            )
        total = float(sum(split.values()))
        if total <= 0 or any(w < 0 for w in split.values()):
            raise ValueError("A/B split weights must be >= 0 and not all 0")
        self.split = {k: w / total for k, w in sorted(split.items())}

    def routed_label(self, user: Any) -> str | None:
        """The label of the A/B split ``user`` falls in (a stable hash), or None."""
        if not self.split or user is None:
            return None
        if isinstance(user, list | tuple | np.ndarray):
            if not len(user):
                return None
            user = user[0]
        if isinstance(user, bytes):
            user = user.decode("utf-8", "replace")
        point = zlib.crc32(f"{self.name}/{user}".encode()) / 2**32
        edge = 0.0
        for label, share in self.split.items():
            edge += share
            if point < edge:
                return label
        return next(reversed(self.split))

    def _request_user(self, body: dict) -> Any:
        if isinstance(body.get("inputs"), dict):
            return body["inputs"].get(self.split_key)
        instances = body.get("instances")
        if isinstance(instances, list) and instances and isinstance(instances[0], dict):
            return instances[0].get(self.split_key)
        return None

    def _version(self, name: str, version: str | None, label: str | None = None) -> int | None:
        if name != self.name:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Servable not found for request: Latest({name})"
            )
        if label is not None:
            if label not in self.labels:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"Servable not found for request: Label({name}, {label}); labels: "
                    f"{sorted(self.labels)}",
                )
            return self.labels[label]
        if version is None:
            return None
        if not (version.isascii() and version.isdigit()) or len(version) > 18:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})"
            )
        return int(version)

    def _servable(
        self, name: str, version: str | None, label: str | None = None
    ) -> tuple[int, Any]:
        number = self._version(name, version, label)
        try:
            return self.manager.get(number)
        except VersionNotAvailable:
            what = f"Latest({name})" if number is None else f"Specific({name}, {number})"
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Servable not found for request: {what}"
            ) from None

    # -- API -----------------------------------------------------------------------
    def status(self, name: str, version: str | None, label: str | None = None) -> dict:
        """Every version the policy serves (newest first), or the one asked for."""
        number = self._version(name, version, label)
        states = self.manager.states()
        if number is not None:
            states = [s for s in states if s.version == number]
            if not states:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"Servable not found for request: Specific({name}, {number})",
                )
        return {
            "model_version_status": [
                {
                    "version": str(s.version),
                    "state": s.state,
                    "status": {
                        "error_code": "UNKNOWN" if s.state == "END" else "OK",
                        "error_message": s.error,
                    },
                }
                for s in states
            ]
        }

    def metadata(self, name: str, version: str | None, label: str | None = None) -> dict:
        v, loaded = self._servable(name, version, label)
        defs = {}
        for sig_name, fn in loaded.signatures.items():
            inputs = fn.structured_input_signature[1]
            outputs = fn.structured_outputs
            defs[sig_name] = {
                "inputs": {
                    k: _tensor_info(s.dtype, s.shape, f"{sig_name}_{k}:0")
                    for k, s in inputs.items()
                },
                "outputs": {
                    k: _tensor_info(t.dtype, t.shape, f"{k}:0") for k, t in outputs.items()
                },
                "method_name": (
                    "tensorflow/serving/regress"
                    if sig_name == "regress"
                    else "tensorflow/serving/predict"
                ),
            }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(v)},
            "metadata": {"signature_def": {"signature_def": defs}},
        }

    def predict(self, name: str, version: str | None, body: Any, label: str | None = None) -> dict:
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        if version is None and label is None:
            label = self.routed_label(self._request_user(body))
        served, loaded = self._servable(name, version, label)
        sig_name = body.get("signature_name", "serving_default")
        if not isinstance(sig_name, str):
            raise RequestError(HTTPStatus.BAD_REQUEST, "'signature_name' must be a string")
        if sig_name not in loaded.signatures:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f'Serving signature name: "{sig_name}" not found in signature '
                f"def; available: {sorted(loaded.signatures)}",
            )
        fn = loaded.signatures[sig_name]
        specs = fn.structured_input_signature[1]
        if ("instances" in body) == ("inputs" in body):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                "Missing 'inputs' or 'instances' key (exactly one is needed)",
            )
        row_format = "instances" in body
        columns = (
            _rows_to_columns(body["instances"], specs)
            if row_format
            else _columnar(body["inputs"], specs)
        )
        tensors = {k: _to_tensor(k, columns[k], spec) for k, spec in specs.items()}
        largest = max((int(t.shape[0]) for t in tensors.values() if t.shape.rank), default=0)
        self._check_batch(largest)
        try:
            out = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise RequestError(HTTPStatus.BAD_REQUEST, _error_line(err)) from None
        out = {k: _to_json(v.numpy()) for k, v in out.items()}
        tag = {"model_version": str(served)}  # which version answered (A/B, rollouts)
        if row_format:
            n = len(next(iter(out.values())))
            if len(out) == 1:
                return {"predictions": next(iter(out.values())), **tag}
            rows = [{k: v[i] for k, v in out.items()} for i in range(n)]
            return {"predictions": rows, **tag}
        return {"outputs": next(iter(out.values())) if len(out) == 1 else out, **tag}


def _example(values: dict, where: str) -> tf.train.Example:
    """A ``tf.train.Example`` from TF Serving's JSON example format: ints become
    int64_list, floats float_list, strings and ``{"b64": ...}`` bytes_list; a list is
    several values."""
    example = tf.train.Example()
    if not isinstance(values, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{where} must be an object")
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        feature = example.features.feature[name]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            if any(not -(2**63) <= v < 2**63 for v in items):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"{where}: '{name}' overflows int64")
            feature.int64_list.value.extend(items)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            feature.float_list.value.extend(float(v) for v in items)
        elif all(isinstance(v, str) or (isinstance(v, dict) and set(v) == {"b64"}) for v in items):
            try:
                feature.bytes_list.value.extend(_decode(v) for v in items)
            except (ValueError, TypeError) as err:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"{where}: '{name}': {err}") from None
        else:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"{where}: '{name}' mixes or has unsupported value types"
            )
    return example


def _tensor_info(dtype, shape, name: str) -> dict:
    if shape.rank is None:
        return {
            "dtype": _TF_TYPES.get(dtype, dtype.name),
            "tensor_shape": {"dim": [], "unknown_rank": True},
            "name": name,
        }
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in shape.as_list()]
    return {
        "dtype": _TF_TYPES.get(dtype, dtype.name),
        "tensor_shape": {"dim": dims, "unknown_rank": False},
        "name": name,
    }


def _regress(model: ModelServer, name, version, body, label) -> dict:
    """TF Serving's REST ``:regress``: ``{"examples": [...], "context"?: {...}}`` ->
    ``{"results": [score, ...]}`` through the ``regress`` signature."""
    if not isinstance(body, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
    _, loaded = model._servable(name, version, label)
    sig_name = body.get("signature_name") or "regress"
    if not isinstance(sig_name, str) or sig_name not in loaded.signatures:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'Serving signature name: "{sig_name}" not found'
        )
    fn = loaded.signatures[sig_name]
    if set(fn.structured_input_signature[1]) != {"inputs"}:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'signature "{sig_name}" is not a regress signature'
        )
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise RequestError(HTTPStatus.BAD_REQUEST, "'examples' must be a non-empty list")
    model._check_batch(len(examples))
    context = _example(body.get("context") or {}, "context")
    serialized = []
    for i, values in enumerate(examples):
        merged = tf.train.Example()
        merged.CopyFrom(context)
        merged.MergeFrom(_example(values, f"example {i}"))
        serialized.append(merged.SerializeToString())
    try:
        out = fn(inputs=tf.constant(serialized))
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
        raise RequestError(HTTPStatus.BAD_REQUEST, _error_line(err)) from None
    return {"results": [float(v) for v in np.asarray(out["outputs"]).reshape(-1)]}


def _rows_to_columns(instances: Any, specs: dict) -> dict[str, list]:
    if not isinstance(instances, list) or not instances:
        raise RequestError(HTTPStatus.BAD_REQUEST, "'instances' must be a non-empty list")
    if not isinstance(instances[0], dict) or set(instances[0]) == {"b64"}:
        if len(specs) != 1:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"instances must be objects naming the inputs {sorted(specs)}",
            )
        return {next(iter(specs)): instances}
    columns: dict[str, list] = {k: [] for k in specs}
    for i, row in enumerate(instances):
        if not isinstance(row, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"instance {i} is not an object")
        unknown = set(row) - set(specs)
        if unknown:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"instance {i}: unknown inputs {sorted(unknown)}"
            )
        for k in specs:
            if k not in row:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"instance {i}: missing input '{k}'")
            columns[k].append(row[k])
    return columns


def _columnar(inputs: Any, specs: dict) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        if len(specs) != 1:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"'inputs' must be an object naming the inputs {sorted(specs)}",
            )
        return {next(iter(specs)): inputs}
    unknown = set(inputs) - set(specs)
    if unknown:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"unknown inputs {sorted(unknown)}")
    missing = [k for k in specs if k not in inputs]
    if missing:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"missing input '{missing[0]}'")
    return inputs


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def _error_line(err: Exception) -> str:
    """The line of a TensorFlow error that says what is wrong (not "Graph execution
    error:" nor the node trace)."""
    text = getattr(err, "message", None) or str(err)
    lines = [re.sub(r"\s*\[\[\{\{node .*$", "", line).strip() for line in text.splitlines()]
    useful = [
        line
        for line in lines
        if line and line != "Graph execution error:" and not line.startswith("Detected at node")
    ]
    return useful[-1] if useful else (lines[0] if lines else type(err).__name__)


def _to_tensor(name: str, value: Any, spec: tf.TensorSpec) -> tf.Tensor:
    try:
        if spec.dtype == tf.string:
            array = np.asarray(_decode(value), dtype=object)
            if any(not isinstance(v, bytes) for v in array.reshape(-1)):
                raise TypeError("expected strings")
        else:
            # One vectorised conversion, then the kind of what came out says whether the
            # JSON held the right type (no per-value Python loop on the request path).
            array = np.asarray(value)
            kind = array.dtype.kind if array.size else "i"  # ([] is any type)
            if spec.dtype.is_integer:
                if kind == "f":
                    raise TypeError(f"expected integers ({spec.dtype.name})")
                if kind not in "iu":
                    raise TypeError(f"expected numbers of type {spec.dtype.name}")
                info = np.iinfo(spec.dtype.as_numpy_dtype)
                if array.size and (array.min() < info.min or array.max() > info.max):
                    bad = array.max() if array.max() > info.max else array.min()
                    raise ValueError(f"{bad} does not fit in {spec.dtype.name}")
            elif kind not in "iuf":
                raise TypeError(f"expected numbers of type {spec.dtype.name}")
            array = array.astype(spec.dtype.as_numpy_dtype, copy=False)
    except OverflowError:
        message = f"input '{name}': a value does not fit in {spec.dtype.name}"
        raise RequestError(HTTPStatus.BAD_REQUEST, message) from None
    except (TypeError, ValueError) as err:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"input '{name}': {err}") from None
    if not spec.shape.is_compatible_with(array.shape):
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"input '{name}' has shape {list(array.shape)}, expected {spec.shape.as_list()}",
        )
    return tf.constant(array, dtype=spec.dtype)


def _to_json(value: np.ndarray) -> Any:
    if value.dtype == object:
        return (
            [v.decode("utf-8", "replace") for v in value.reshape(-1)]
            if value.ndim
            else value.item().decode("utf-8", "replace")
        )
    return value.tolist()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    _started: float | None = None
    _observed: tuple[str, str] = ("", "")
    # Headers and body leave without waiting for the client's delayed ACK (Nagle's
    # algorithm cost keep-alive clients ~40 ms per request).
    disable_nagle_algorithm = True
    timeout = 30  # an idle or stalled connection is closed, freeing its worker

    def log_message(self, fmt, *args):  # quiet by default; --verbose turns it on
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        started = getattr(self, "_started", None)
        if started is not None:
            model, verb = self._observed
            self.server.metrics.observe(
                model, "rest", verb, str(int(status)), time.perf_counter() - started
            )
            self._started = None
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, fn) -> None:
        try:
            self._send(HTTPStatus.OK, fn())
        except RequestError as err:
            self._send(err.status, {"error": str(err)})
        except Exception as err:  # noqa: BLE001 - the server must keep serving
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {err}"})

    def _observe(self, model: str, verb: str) -> None:
        """Counts the request (and times it) when its answer is sent."""
        self._started, self._observed = time.perf_counter(), (model, verb)

    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path.rstrip("/") == METRICS_PATH:
            data = self.server.metrics.exposition()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        match = _GET.match(self.path)
        if not match:
            return self._send(HTTPStatus.NOT_FOUND, {"error": f"unknown path {self.path}"})
        name, version, label = match["name"], match["version"], match["label"]
        self._observe(name, "metadata" if match["metadata"] else "status")
        model = self.server.models.get(name, self.server.model)  # (unknown name: a 404)
        if match["metadata"]:
            return self._answer(lambda: model.metadata(name, version, label))
        return self._answer(lambda: model.status(name, version, label))

    def _body(self) -> bytes | None:
        """The request body, or None after answering a bad or oversized one."""
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        if not (text.strip().isascii() and text.strip().isdigit()):
            self.close_connection = True
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"bad Content-Length {text!r}"})
            return None
        length, limit = int(text), self.server.max_body_bytes
        if length > limit:
            # Read and drop the body (up to 4x the limit) so the client gets the 413
            # instead of a broken pipe; then close the connection.
            self.close_connection = True
            left = length if length <= 4 * limit else 0
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"request body of {length} bytes exceeds the limit of {limit}"},
            )
            return None
        return self.rfile.read(length)

    def do_POST(self):  # noqa: N802
        raw = self._body()
        if raw is None:
            return None
        match = _POST.match(self.path)
        if not match or match["verb"] not in ("predict", "regress", "classify"):
            return self._send(
                HTTPStatus.NOT_FOUND,
                {"error": f"unknown path {self.path} (:predict, :regress are served)"},
            )
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return self._send(HTTPStatus.BAD_REQUEST, {"error": f"JSON Parse error: {err}"})
        except RecursionError:
            return self._send(HTTPStatus.BAD_REQUEST, {"error": "JSON nested too deeply"})
        self._observe(match["name"], match["verb"])
        model = self.server.models.get(match["name"], self.server.model)
        args = (match["name"], match["version"], body, match["label"])
        if match["verb"] == "regress":
            return self._answer(lambda: _regress(model, *args))
        if match["verb"] == "classify":
            return self._send(
                HTTPStatus.BAD_REQUEST,
                {
                    "error": "Expected classification signature method_name to be "
                    "tensorflow/serving/classify: the exports have none; use :regress "
                    "or :predict"
                },
            )
        return self._answer(lambda: model.predict(*args))


class _HTTPServer(ThreadingHTTPServer):
    """Connections are served by a bounded pool of worker threads (``workers``); more
    connections wait in the listen queue instead of each getting a thread."""

    daemon_threads = True
    request_queue_size = 128
    config_watcher: ConfigWatcher | None = None

    def __init__(
        self,
        address,
        models: Sequence[ModelServer],
        max_body_bytes: int,
        verbose: bool,
        workers: int = 16,
    ):
        super().__init__(address, _Handler)
        self.models = {m.name: m for m in models}
        self.model = models[0]  # the first (or only) model
        self.metrics = ServingMetrics(self.models)
        self.max_body_bytes = max_body_bytes
        self.verbose = verbose
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rest")

    def process_request(self, request, client_address):
        self._pool.submit(self.process_request_thread, request, client_address)

    def server_close(self):
        super().server_close()
        if hasattr(self, "_pool"):  # (not there when binding the port failed)
            self._pool.shutdown(wait=False, cancel_futures=True)
            for model in self.models.values():
                model.manager.close()
            if getattr(self, "config_watcher", None) is not None:
                self.config_watcher.close()


def make_server(
    model_base: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8501,
    name: str | None = None,
    max_body_bytes: int = 16 << 20,
    verbose: bool = False,
    workers: int = 16,
    keep_versions: int = 2,
    poll_seconds: float = 1.0,
    model_config_file: str | None = None,
    ab_split: dict[str, float] | None = None,
    max_batch: int = 50_000,
) -> _HTTPServer:
    """An HTTP server (not yet serving: call ``serve_forever``) for ``model_base``, or for
    every model of a TF Serving ``model_config_file`` (version policies and labels; the
    file is re-read when it changes, so moving a label is a rollback). A port in use
    raises ``OSError`` naming the address."""
    from tfrs_debias.serving.model_config import read_model_config

    if (model_base is None) == (model_config_file is None):
        raise ValueError("give exactly one of a model base path or a model config file")
    if model_base is not None:
        models = [ModelServer(model_base, name, keep_versions, poll_seconds=poll_seconds)]
    else:
        assert model_config_file is not None
        models = []
        try:
            for entry in read_model_config(model_config_file):
                models.append(
                    ModelServer(
                        entry.base_path,
                        entry.name,
                        entry.num_versions,
                        entry.policy,
                        entry.versions,
                        poll_seconds,
                        entry.label_map,
                    )
                )
        except BaseException:
            for model in models:
                model.manager.close()
            raise
    try:
        for model in models:
            model.set_split(ab_split)
            model.max_batch = max_batch
    except ValueError:
        for model in models:
            model.manager.close()
        raise
    try:
        server = _HTTPServer((host, port), models, max_body_bytes, verbose, workers)
    except OSError as err:
        for model in models:
            model.manager.close()
        raise OSError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    server.config_watcher = None
    if model_config_file is not None:
        server.config_watcher = ConfigWatcher(model_config_file, server.models, poll_seconds)
    return server


class ConfigWatcher:
    """Re-reads a model config file when it changes and applies its labels and version
    policies to the models already served (adding or removing a model needs a restart).
    A file that no longer parses is ignored (the last good one stays in force)."""

    def __init__(self, path: str, models: dict[str, ModelServer], seconds: float):
        self.path, self.models = path, models
        self._stamp = self._mtime()
        self._stop = threading.Event()
        if seconds > 0:  # else call apply()
            threading.Thread(target=self._run, args=(seconds,), daemon=True).start()

    def _mtime(self):
        try:
            return tf.io.gfile.stat(self.path).mtime_nsec
        except tf.errors.OpError:
            return None

    def apply(self) -> None:
        from tfrs_debias.serving.model_config import read_model_config

        for entry in read_model_config(self.path):
            model = self.models.get(entry.name)
            if model is None:
                continue
            model.labels = entry.label_map
            manager = model.manager
            manager.policy, manager.num_versions = entry.policy, entry.num_versions
            manager.versions = entry.versions

    def _run(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            stamp = self._mtime()
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                self.apply()
            except (ValueError, OSError):
                continue

    def close(self) -> None:
        self._stop.set()
