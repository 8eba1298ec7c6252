"""`make_server`: TF Serving's REST API over ``saved_models/NAME`` (the HTTP transport
of `ModelServer`), for users without a TF Serving binary (and for tests). A client
written for TF Serving works unchanged:

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

import email.parser
import http.client
import json
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tfrs_debias.backend import tf
from tfrs_debias.serving.model_server import ModelServer, regress
from tfrs_debias.serving.rest_codec import RequestError, dumps, loads
from tfrs_debias.serving.serving_metrics import ServingMetrics

#: TF Serving's Prometheus path.
METRICS_PATH = "/monitoring/prometheus/metrics"

_VERSION = r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
_GET = re.compile(r"^/v1/models/(?P<name>[^/:]+)" + _VERSION + r"(?P<metadata>/metadata)?/?$")
_POST = re.compile(r"^/v1/models/(?P<name>[^/:]+)" + _VERSION + r":(?P<verb>[a-z]+)$")


#: The standard library's limits on a header line and on the number of headers.
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100


def read_headers(rfile, message_class=http.client.HTTPMessage) -> http.client.HTTPMessage:
    """The request's headers, as ``http.client.parse_headers`` reads them, with its
    limits (`MAX_HEADER_LINE`, `MAX_HEADERS`). Plain ``Name: value`` lines are stored
    directly (2-3 µs a request, against ~20 µs through the e-mail parser, a fifth of
    the server's own work per request); a block with anything else (folded or
    malformed lines) goes through that parser, as the standard library does.

    Raises:
      http.client.LineTooLong: a header line is over the limit.
      http.client.HTTPException: more than `MAX_HEADERS` headers.
    """
    lines: list[bytes] = []
    fields: list[tuple[str, str]] | None = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            break
        name, colon, value = line.decode("iso-8859-1").partition(":")
        if fields is not None and colon and name and _FIELD_NAME.fullmatch(name):
            fields.append((name, value.lstrip(" \t").rstrip("\r\n")))
        else:
            fields = None  # (from here on only collected, for the e-mail parser)
    if fields is None:
        text = b"".join(lines).decode("iso-8859-1")
        return email.parser.Parser(_class=message_class).parsestr(text)
    message = message_class()
    message.set_payload("")  # (as the parser leaves it: the body is read separately)
    for name, value in fields:
        message.set_raw(name, value)
    return message


# A header name as the e-mail parser accepts it: printable ASCII but ':' and space.
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+")


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    raw_requestline: bytes  # (set by handle_one_request before parse_request)
    protocol_version = "HTTP/1.1"
    _started: float | None = None
    _observed: tuple[str, str] = ("", "")
    # Headers and body leave without waiting for the client's delayed ACK (Nagle's
    # algorithm cost keep-alive clients ~40 ms per request).
    disable_nagle_algorithm = True
    timeout = 30  # an idle or stalled connection is closed, freeing its worker

    def parse_request(self) -> bool:
        """`BaseHTTPRequestHandler.parse_request` for the usual ``METHOD PATH HTTP/1.1``
        line, with the headers read by `read_headers`; any other request line (other
        versions, bad syntax) goes through the standard library's own method."""
        words = self.raw_requestline.split()
        if len(words) != 3 or words[2] != b"HTTP/1.1":
            return super().parse_request()
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        command, path, version = (str(w, "iso-8859-1") for w in words)
        self.command, self.request_version, self.close_connection = command, version, False
        # (As the standard library: "//path" is not left to read as a host.)
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        try:
            self.headers = read_headers(self.rfile, self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err)
            )
            return False
        if self.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        if self.headers.get("Expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The standard library's own error answers (a malformed request line or header
        block, an unsupported method, a URI or header over the limits) as JSON
        ``{"error": ...}``, like every other answer of this server and of TF Serving,
        instead of its HTML page, with a status line even where the standard library
        took a malformed request line for HTTP/0.9 and sent the page alone. The
        connection is closed, as the standard library does."""
        self.request_version = self.protocol_version
        short = self.responses.get(code, ("Error",))[0]
        text = message or short
        if explain:
            text = f"{text}: {explain}"
        self.log_error("code %d, message %s", code, text)
        self.close_connection = True
        self.send_response(code, message or short)
        self.send_header("Connection", "close")
        data = b""
        if code >= 200 and code not in (204, 205, 304):
            data = dumps({"error": text})
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, fmt, *args):  # quiet by default; --verbose turns it on
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, payload: dict) -> None:
        data = dumps(payload)
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
            body = loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return self._send(HTTPStatus.BAD_REQUEST, {"error": f"JSON Parse error: {err}"})
        except RecursionError:
            return self._send(HTTPStatus.BAD_REQUEST, {"error": "JSON nested too deeply"})
        self._observe(match["name"], match["verb"])
        model = self.server.models.get(match["name"], self.server.model)
        args = (match["name"], match["version"], body, match["label"])
        if match["verb"] == "regress":
            return self._answer(lambda: regress(model, *args))
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
    batch_rows: int = 8192,
) -> _HTTPServer:
    """An HTTP server (not yet serving: call ``serve_forever``) for ``model_base``, or for
    every model of a TF Serving ``model_config_file`` (version policies and labels; the
    file is re-read when it changes, so moving a label is a rollback). Concurrent requests
    to a row-wise signature are batched into calls of up to ``batch_rows`` rows
    (`RequestBatcher`; 0: off). A port in use raises ``OSError`` naming the address."""
    from tfrs_debias.serving.model_config import read_model_config

    if (model_base is None) == (model_config_file is None):
        raise ValueError("give exactly one of a model base path or a model config file")
    if batch_rows < 0:
        raise ValueError(f"batch_rows must be >= 0 (0 turns batching off), got {batch_rows}")
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
            model.manager.batch_rows = batch_rows
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
