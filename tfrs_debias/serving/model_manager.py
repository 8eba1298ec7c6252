"""`ModelManager`: which versions of ``saved_models/NAME`` are loaded and served, with TF
Serving's semantics.

* A **version policy** picks the versions to serve from those on disk: ``latest`` N
  (TF Serving's default policy, here N = 2 so the previous version stays available for
  rollback by URL), ``all``, or ``specific`` versions.
* Versions are loaded **off the request path**: at start, then by a poller thread
  (``poll_seconds``) and by `refresh`; a request never loads a SavedModel and never
  waits on a load. A version is loaded as TF Serving loads it, into a graph and session
  of its own (`SessionServable`). Each loaded version is warmed up with one call
  before it is served.
  Once the manager serves, a load runs under a `LoadThrottle` (``load_duty_cycle``) so
  that it does not take the interpreter from the requests, and a version taken out of
  service is freed outside the lock requests take.
* A version is switched in **only once it has loaded**: a new, re-exported (``--force``)
  or half-copied folder leaves the version already loaded in service; a folder that
  cannot be loaded is reported in status (state ``END`` with its error) and retried when
  its files change. Changed files are told by the size and modification time of
  ``saved_model.pb`` and the variables index.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.serving.load_throttle import LoadThrottle, check_duty_cycle
from tfrs_debias.serving.loaded_export import list_versions, warmup_inputs
from tfrs_debias.serving.request_batcher import RequestBatcher, is_row_wise
from tfrs_debias.serving.session_servable import SessionServable

POLICIES = ("latest", "all", "specific")
_FILES = ("saved_model.pb", os.path.join("variables", "variables.index"))


@dataclasses.dataclass
class VersionState:
    """One version's state as TF Serving reports it: ``LOADING``, ``AVAILABLE`` or
    ``END`` (could not load: ``error`` says why)."""

    version: int
    state: str
    error: str = ""
    fingerprint: tuple | None = None
    servable: Any = None
    #: The `RequestBatcher` of each signature called so far (None: not row-wise).
    batchers: dict[str, RequestBatcher | None] = dataclasses.field(default_factory=dict)


class VersionNotAvailable(LookupError):
    """The version asked for is not loaded (not on disk, outside the policy, broken)."""


def fingerprint(version_dir: str) -> tuple | None:
    """``(size, mtime)`` of the files that change when a version is (re)written, or None
    while ``saved_model.pb`` is not there."""
    out: list[tuple[int, int] | None] = []
    for name in _FILES:
        path = os.path.join(version_dir, name)
        try:
            stat = tf.io.gfile.stat(path)
        except tf.errors.NotFoundError:
            if name == "saved_model.pb":
                return None
            out.append(None)
            continue
        out.append((stat.length, stat.mtime_nsec))
    return tuple(out)


def _warm_up(servable: Any, version_dir: str | None = None) -> None:
    """Replays the export's TF Serving warm-up requests (``assets.extra/
    tf_serving_warmup_requests``), else one call of ``serving_default`` on a one-row
    batch, so the first request does not pay the first call's cost."""
    warmup = os.path.join(version_dir or "", "assets.extra", "tf_serving_warmup_requests")
    if version_dir is not None and tf.io.gfile.exists(warmup):
        from tensorflow.python.util import deprecation
        from tensorflow_serving.apis import prediction_log_pb2

        # The record reader, not tf.data: building and iterating a dataset is eager ops
        # that held the interpreter 6-11 ms each while a server answered requests; the
        # reader's calls are one record each. (Deprecated for input pipelines only.)
        with deprecation.silence():
            records = list(tf.compat.v1.io.tf_record_iterator(warmup))
        for record in records:
            log = prediction_log_pb2.PredictionLog.FromString(record)
            request = log.predict_log.request
            fn = servable.signatures[request.model_spec.signature_name or "serving_default"]
            fn.run({k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        return
    fn = servable.signatures.get("serving_default")
    if fn is None:
        return
    fn.run(warmup_inputs(fn.structured_input_signature[1], rows=1))


class ModelManager:
    """Loads and serves versions of one model base path; see the module docstring.

    Args:
      model_base: ``saved_models/NAME`` (integer version folders inside).
      policy: ``"latest"``, ``"all"`` or ``"specific"``. Defaults to latest.
      num_versions: how many of the latest versions to serve. Defaults to 2.
      versions: the versions of the ``specific`` policy.
      poll_seconds: how often a background thread looks for new or changed versions;
        0 disables the thread (call `refresh`). Defaults to 1.
      batch_rows: the most rows one batched call of a row-wise signature takes
        (`RequestBatcher`); 0 turns batching off. Defaults to 8192.
      load_duty_cycle: the share of wall time a load after the first `refresh` may hold
        the interpreter (`LoadThrottle`); 1 loads at full speed. Defaults to 1/3.
    """

    def __init__(
        self,
        model_base: str,
        policy: str = "latest",
        num_versions: int = 2,
        versions: Sequence[int] = (),
        poll_seconds: float = 1.0,
        batch_rows: int = 8192,
        load_duty_cycle: float = 1 / 3,
    ):
        if policy not in POLICIES:
            raise ValueError(f"version policy must be one of {POLICIES}, got {policy!r}")
        if policy == "latest" and num_versions < 1:
            raise ValueError("num_versions must be >= 1")
        if policy == "specific" and not versions:
            raise ValueError("the specific version policy needs versions")
        self.model_base = model_base
        self.policy = policy
        self.num_versions = num_versions
        self.versions = tuple(int(v) for v in versions)
        self.batch_rows = batch_rows
        check_duty_cycle(load_duty_cycle, "load_duty_cycle")
        self.load_duty_cycle = load_duty_cycle
        self._states: dict[int, VersionState] = {}
        self._started = False
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self.refresh()
        self._started = True  # from now on, loads are throttled (`_throttle`)
        self._thread = None
        if poll_seconds > 0:
            self._thread = threading.Thread(
                target=self._poll, args=(poll_seconds,), name="model-manager", daemon=True
            )
            self._thread.start()

    # -- which versions ----------------------------------------------------------------
    def wanted(self, on_disk: Sequence[int]) -> list[int]:
        """The versions the policy serves among those ``on_disk``."""
        if self.policy == "all":
            return list(on_disk)
        if self.policy == "specific":
            return [v for v in on_disk if v in self.versions]
        return list(on_disk)[-self.num_versions :]

    def refresh(self) -> None:
        """Loads new and changed versions the policy wants, unloads the others. Loading
        happens outside the serving lock; a version is swapped in once loaded."""
        with self._refresh_lock:
            wanted = self.wanted(list_versions(self.model_base))
            for version in wanted:
                self._update(version)
            with self._lock:
                dropped = [self._states.pop(v) for v in list(self._states) if v not in wanted]
            self._retire(dropped)

    def _update(self, version: int) -> None:
        path = os.path.join(self.model_base, str(version))
        fp = fingerprint(path)
        with self._lock:
            current = self._states.get(version)
        if current is not None and current.fingerprint == fp:
            return
        if fp is None:  # an empty or half-copied folder: keep what is loaded
            if current is None:
                with self._lock:
                    self._states[version] = VersionState(
                        version, "LOADING", "no saved_model.pb yet", None
                    )
            return
        try:
            with self._throttle():
                servable = SessionServable(path)
                _warm_up(servable, path)
        except Exception as err:  # noqa: BLE001 - a broken folder must not stop serving
            message = (getattr(err, "message", None) or str(err)).strip().splitlines()
            with self._lock:
                if current is not None and current.servable is not None:
                    current.error = f"reload failed: {message[0] if message else err!r}"
                    current.fingerprint = fp  # retried when the files change again
                else:
                    self._states[version] = VersionState(
                        version, "END", message[0] if message else repr(err), fp
                    )
            return
        with self._lock:
            replaced = self._states.get(version)
            self._states[version] = VersionState(version, "AVAILABLE", "", fp, servable)
        self._retire([replaced] if replaced is not None else [])

    def _throttle(self) -> LoadThrottle:
        """The `LoadThrottle` of this thread's loads: full speed before the manager
        serves (the first `refresh`), ``load_duty_cycle`` after."""
        return LoadThrottle(self.load_duty_cycle if self._started else 1.0)

    def _retire(self, states: list[VersionState]) -> None:
        """Lets go of versions taken out of service, outside the lock requests take:
        what a version frees at once (its session: ~3 ms) runs on this, the loading
        thread, under the `LoadThrottle` (a request still running on the version keeps
        it alive until it ends). Its graph's ~1k Python objects are in reference cycles,
        which the interpreter's collector frees (~5 ms)."""
        servables = [s.servable for s in states if s.servable is not None]
        if not servables:
            return
        for state in states:
            state.servable = None
        with self._throttle():
            servables.clear()  # the last references the manager held

    def _poll(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - e.g. the base folder briefly unreadable
                continue

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- serving -----------------------------------------------------------------------
    def get(self, version: int | None = None) -> tuple[int, Any]:
        """``(version, loaded SavedModel)``: the given version, or the newest available.

        Raises:
          VersionNotAvailable: no such loaded version.
        """
        with self._lock:
            available = {v: s for v, s in self._states.items() if s.servable is not None}
        if version is None:
            if not available:
                raise VersionNotAvailable("no version is available yet")
            version = max(available)
        if version not in available:
            raise VersionNotAvailable(f"version {version} is not available")
        return version, available[version].servable

    def run(
        self, version: int, servable: Any, name: str, arrays: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Signature ``name`` of a version `get` returned, on checked numpy inputs;
        concurrent calls of a row-wise signature are batched (`RequestBatcher`).

        Raises:
          ValueError: a row-wise signature's inputs differ in their number of rows.
        """
        fn = servable.signatures[name]
        rows = RequestBatcher.rows(arrays)
        if rows is None and is_row_wise(fn):
            sizes = ", ".join(
                f"{k} {a.shape[0] if a.ndim else 'scalar'}" for k, a in arrays.items()
            )
            raise ValueError(f"the inputs of '{name}' must have the same number of rows: {sizes}")
        batcher = None
        if self.batch_rows > 0 and rows is not None:
            with self._lock:
                state = self._states.get(version)
                if state is not None and state.servable is servable:
                    if name not in state.batchers:
                        row_wise = is_row_wise(fn)
                        state.batchers[name] = (
                            RequestBatcher(fn, self.batch_rows) if row_wise else None
                        )
                    batcher = state.batchers[name]
        if batcher is not None:
            return batcher(arrays)
        return fn.run(arrays)

    def states(self) -> list[VersionState]:
        """Every version the policy wants, newest first."""
        with self._lock:
            return [self._states[v] for v in sorted(self._states, reverse=True)]
