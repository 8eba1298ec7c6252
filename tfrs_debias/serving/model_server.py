"""`ModelServer`: TF Serving's REST semantics over exported models — status, metadata,
``:predict`` (row or columnar format) and ``:regress`` — for one or several models,
each with its `ModelManager` (version policy, background loading), version labels and
an optional A/B split. The HTTP transport is `rest_server`; bad requests raise
`RequestError` (a 4xx naming the input)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.serving.loaded_export import list_versions
from tfrs_debias.serving.model_manager import ModelManager, VersionNotAvailable
from tfrs_debias.serving.rest_codec import (
    RequestError,
    columnar_inputs,
    error_line,
    example_from_json,
    rows_to_columns,
    tensor_info,
    to_array,
    to_json,
)


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
                    k: tensor_info(s.dtype, s.shape, f"{sig_name}_{k}:0") for k, s in inputs.items()
                },
                "outputs": {k: tensor_info(t.dtype, t.shape, f"{k}:0") for k, t in outputs.items()},
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
            rows_to_columns(body["instances"], specs)
            if row_format
            else columnar_inputs(body["inputs"], specs)
        )
        arrays = {k: to_array(k, columns[k], spec) for k, spec in specs.items()}
        self._check_batch(max((a.shape[0] for a in arrays.values() if a.ndim), default=0))
        try:
            out = self.manager.run(served, loaded, sig_name, arrays)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise RequestError(HTTPStatus.BAD_REQUEST, error_line(err)) from None
        out = {k: to_json(v) for k, v in out.items()}
        tag = {"model_version": str(served)}  # which version answered (A/B, rollouts)
        if row_format:
            n = len(next(iter(out.values())))
            if len(out) == 1:
                return {"predictions": next(iter(out.values())), **tag}
            rows = [{k: v[i] for k, v in out.items()} for i in range(n)]
            return {"predictions": rows, **tag}
        return {"outputs": next(iter(out.values())) if len(out) == 1 else out, **tag}


def regress(model: ModelServer, name, version, body, label) -> dict:
    """TF Serving's REST ``:regress``: ``{"examples": [...], "context"?: {...}}`` ->
    ``{"results": [score, ...]}`` through the ``regress`` signature."""
    if not isinstance(body, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
    served, loaded = model._servable(name, version, label)
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
    context = example_from_json(body.get("context") or {}, "context")
    serialized = []
    for i, values in enumerate(examples):
        merged = tf.train.Example()
        merged.CopyFrom(context)
        merged.MergeFrom(example_from_json(values, f"example {i}"))
        serialized.append(merged.SerializeToString())
    try:
        out = model.manager.run(
            served, loaded, sig_name, {"inputs": np.array(serialized, dtype=object)}
        )
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
        raise RequestError(HTTPStatus.BAD_REQUEST, error_line(err)) from None
    return {"results": [float(v) for v in np.asarray(out["outputs"]).reshape(-1)]}
