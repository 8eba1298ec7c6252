"""`ModelServer`: TF Serving's REST API over ``saved_models/NAME``, for users without a
TF Serving binary (and for tests). A client written for TF Serving works unchanged:

* ``GET  /v1/models/NAME[/versions/V]``             model status
* ``GET  /v1/models/NAME[/versions/V]/metadata``    signature defs
* ``POST /v1/models/NAME[/versions/V]:predict``     ``{"signature_name"?, "instances": [...]}``
  (row format, answered as ``{"predictions": ...}``) or ``{"inputs": ...}`` (columnar,
  answered as ``{"outputs": ...}``).

The newest version is served and a newly exported version is picked up on the next
request, without restart. Bad requests get ``{"error": "..."}`` with a 4xx code and
the server keeps serving. Binary strings may be sent as ``{"b64": "..."}``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.serving.loaded_export import list_versions

_GET = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r"(?P<metadata>/metadata)?/?$"
)
_POST = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r":(?P<verb>[a-z]+)$"
)
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
    """Loads versions of one model base path and answers TF Serving REST calls.

    Args:
      model_base: ``saved_models/NAME`` (integer version folders inside).
      name: the model name in URLs. Defaults to the folder name.
      keep_versions: loaded versions kept in memory. Defaults to 2.
    """

    def __init__(self, model_base: str, name: str | None = None, keep_versions: int = 2):
        self.model_base = os.path.abspath(model_base)
        self.name = name or os.path.basename(self.model_base.rstrip("/"))
        self.keep_versions = keep_versions
        self._loaded: dict[int, Any] = {}
        self._lock = threading.Lock()
        if not list_versions(self.model_base):
            raise FileNotFoundError(f"{model_base}: no integer version folders to serve")

    # -- versions ------------------------------------------------------------------
    def _version(self, name: str, version: str | None) -> int:
        if name != self.name:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Servable not found for request: Latest({name})"
            )
        versions = list_versions(self.model_base)
        if version is None:
            if not versions:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no version of {name} to serve")
            return versions[-1]
        if not version.isdigit() or int(version) not in versions:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})"
            )
        return int(version)

    def load(self, version: int):
        with self._lock:
            if version not in self._loaded:
                self._loaded[version] = tf.saved_model.load(
                    os.path.join(self.model_base, str(version))
                )
                for old in sorted(self._loaded)[: -self.keep_versions]:
                    del self._loaded[old]
            return self._loaded[version]

    # -- API -----------------------------------------------------------------------
    def status(self, name: str, version: str | None) -> dict:
        if version is None:
            self._version(name, None)
            shown = list_versions(self.model_base)[-1:]
        else:
            shown = [self._version(name, version)]
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
                for v in shown
            ]
        }

    def metadata(self, name: str, version: str | None) -> dict:
        v = self._version(name, version)
        loaded = self.load(v)
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

    def predict(self, name: str, version: str | None, body: Any) -> dict:
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        v = self._version(name, version)
        loaded = self.load(v)
        sig_name = body.get("signature_name", "serving_default")
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
        try:
            out = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            message = getattr(err, "message", str(err)).splitlines()[0]
            raise RequestError(HTTPStatus.BAD_REQUEST, message) from None
        out = {k: _to_json(v.numpy()) for k, v in out.items()}
        if row_format:
            n = len(next(iter(out.values())))
            if len(out) == 1:
                return {"predictions": next(iter(out.values()))}
            return {"predictions": [{k: v[i] for k, v in out.items()} for i in range(n)]}
        return {"outputs": next(iter(out.values())) if len(out) == 1 else out}


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


def _to_tensor(name: str, value: Any, spec: tf.TensorSpec) -> tf.Tensor:
    try:
        if spec.dtype == tf.string:
            array = np.asarray(_decode(value), dtype=object)
            if any(not isinstance(v, bytes) for v in array.reshape(-1)):
                raise TypeError("expected strings")
        else:
            if isinstance(value, str) or (
                isinstance(value, list) and any(isinstance(v, str | dict | list) for v in value)
            ):
                raise TypeError(f"expected numbers of type {spec.dtype.name}")
            array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
            if spec.dtype.is_integer and not np.array_equal(array, np.asarray(value)):
                raise TypeError(f"expected integers ({spec.dtype.name})")
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

    def log_message(self, fmt, *args):  # quiet by default; --verbose turns it on
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, fn) -> None:
        try:
            self._send(HTTPStatus.OK, fn())
        except RequestError as err:
            self._send(err.status, {"error": str(err)})
        except Exception as err:  # noqa: BLE001 - the server must keep serving
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {err}"})

    def do_GET(self):  # noqa: N802 (http.server naming)
        match = _GET.match(self.path)
        if not match:
            return self._send(HTTPStatus.NOT_FOUND, {"error": f"unknown path {self.path}"})
        name, version = match["name"], match["version"]
        model = self.server.model
        if match["metadata"]:
            return self._answer(lambda: model.metadata(name, version))
        return self._answer(lambda: model.status(name, version))

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_body_bytes:
            self.close_connection = True
            return self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {
                    "error": f"request body of {length} bytes exceeds the limit of "
                    f"{self.server.max_body_bytes}"
                },
            )
        raw = self.rfile.read(length)
        match = _POST.match(self.path)
        if not match or match["verb"] != "predict":
            return self._send(
                HTTPStatus.NOT_FOUND,
                {"error": f"unknown path {self.path} (only :predict is served)"},
            )
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as err:
            return self._send(HTTPStatus.BAD_REQUEST, {"error": f"JSON Parse error: {err}"})
        self._answer(lambda: self.server.model.predict(match["name"], match["version"], body))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, model: ModelServer, max_body_bytes: int, verbose: bool):
        super().__init__(address, _Handler)
        self.model = model
        self.max_body_bytes = max_body_bytes
        self.verbose = verbose


def make_server(
    model_base: str,
    host: str = "127.0.0.1",
    port: int = 8501,
    name: str | None = None,
    max_body_bytes: int = 16 << 20,
    verbose: bool = False,
) -> _HTTPServer:
    """An HTTP server (not yet serving: call ``serve_forever``) for ``model_base``."""
    return _HTTPServer((host, port), ModelServer(model_base, name), max_body_bytes, verbose)
