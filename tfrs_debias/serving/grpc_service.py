"""`GrpcService`: TF Serving's gRPC API (the official ``tensorflow-serving-api`` protos)
over the same `ModelManager` as the REST server, so a client written for TF Serving —
``PredictionServiceStub`` / ``ModelServiceStub`` — works unchanged:

* ``PredictionService.Predict``: any signature (``serving_default`` when unnamed),
  ``TensorProto`` inputs, ``output_filter``;
* ``PredictionService.Regress``: ``tf.Example`` inputs (with a context, merged into each
  example) through the export's ``regress`` signature (the default when unnamed);
* ``PredictionService.GetModelMetadata``: the ``signature_def`` map;
* ``ModelService.GetModelStatus``: every version's state.

Errors use TF Serving's codes: ``NOT_FOUND`` for an unknown model or version,
``INVALID_ARGUMENT`` for bad inputs (naming the input), ``UNIMPLEMENTED`` for what the
exports do not support (``Classify``, ``MultiInference``). ``version_label`` resolves
through the model's labels (from a model config file).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import grpc
import numpy as np
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfrs_debias.backend import tf
from tfrs_debias.serving.model_manager import VersionNotAvailable
from tfrs_debias.serving.rest_codec import error_line

_STATES = {
    "LOADING": get_model_status_pb2.ModelVersionStatus.LOADING,
    "AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    "END": get_model_status_pb2.ModelVersionStatus.END,
}
#: google.rpc codes in StatusProto.error_code.
_OK, _UNKNOWN = 0, 2


#: dtypes whose TensorProto carries the raw little-endian bytes (``tensor_content``).
_RAW = {np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.uint8)}


def tensor_to_array(proto) -> np.ndarray:
    """``tf.make_ndarray`` with a short path for the common case (a numeric tensor sent
    as raw bytes, as ``tf.make_tensor_proto`` writes it): one ``np.frombuffer``."""
    dtype = tf.dtypes.as_dtype(proto.dtype)
    numpy_dtype = np.dtype(dtype.as_numpy_dtype) if dtype.is_numpy_compatible else None
    if proto.tensor_content and numpy_dtype in _RAW:
        shape = [d.size for d in proto.tensor_shape.dim]
        if len(proto.tensor_content) == numpy_dtype.itemsize * math.prod(shape):
            return np.frombuffer(proto.tensor_content, numpy_dtype).reshape(shape)
    return tf.make_ndarray(proto)


def array_to_tensor(array: np.ndarray, out) -> None:
    """Writes ``array`` into the ``TensorProto`` ``out`` as ``tf.make_tensor_proto``
    would, directly as raw bytes for the common numeric dtypes (a tenth of its cost)."""
    array = np.asarray(array)
    if array.dtype not in _RAW or array.size < 2:  # (TensorFlow writes those as values)
        out.CopyFrom(tf.make_tensor_proto(array))
        return
    out.dtype = tf.as_dtype(array.dtype).as_datatype_enum
    for size in array.shape:
        out.tensor_shape.dim.add(size=size)
    out.tensor_content = array.tobytes()  # C order, native (little-endian) bytes


def _abort(context, code: grpc.StatusCode, message: str) -> NoReturn:
    """Ends the call with ``code`` (``context.abort`` raises; this says so to readers
    and type checkers)."""
    context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")


class GrpcService(
    prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service_pb2_grpc.ModelServiceServicer,
):
    """The servicer of both TF Serving services for `ModelServer` s (one per model)."""

    def __init__(self, models, metrics=None):
        if not isinstance(models, dict):
            models = {models.name: models}
        self.models = models
        self.metrics = metrics
        for verb in ("Predict", "Regress", "GetModelMetadata", "GetModelStatus"):
            setattr(self, verb, self._observed(verb, getattr(self, verb)))

    def _observed(self, verb: str, method):
        """``method`` counted and timed in ``metrics`` (by its gRPC status code)."""
        if self.metrics is None:
            return method

        def call(request, context):
            start, code = time.perf_counter(), "OK"
            try:
                return method(request, context)
            except Exception:
                code = context.code().name if context.code() is not None else "UNKNOWN"
                raise
            finally:
                name = request.model_spec.name
                self.metrics.observe(name, "grpc", verb, code, time.perf_counter() - start)

        return call

    # -- shared ------------------------------------------------------------------------
    def _model(self, spec, context):
        model = self.models.get(spec.name)
        if model is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"Servable not found: {spec.name!r}")
        return model

    def _servable(self, spec, context, inputs=None) -> tuple[int, object]:
        model = self._model(spec, context)
        version = spec.version.value if spec.HasField("version") else None
        routed = version is None and not spec.version_label and model.split
        if routed and inputs is not None and model.split_key in inputs:  # A/B by user
            user = tensor_to_array(inputs[model.split_key]).reshape(-1).tolist()
            label = model.routed_label(user)
            if label is not None:
                version = model.labels[label]
        if spec.version_label:
            if spec.version_label not in model.labels:
                _abort(
                    context,
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found: {spec.name} (label {spec.version_label!r}; labels: "
                    f"{sorted(model.labels)})",
                )
            version = model.labels[spec.version_label]
        try:
            return model.manager.get(version)
        except VersionNotAvailable:
            what = "latest" if version is None else f"version {version}"
            _abort(context, grpc.StatusCode.NOT_FOUND, f"Servable not found: {spec.name} ({what})")

    @staticmethod
    def _signature(loaded, name: str, context):
        if name not in loaded.signatures:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f'Serving signature name: "{name}" not found in signature def; '
                f"available: {sorted(loaded.signatures)}",
            )
        return loaded.signatures[name]

    @staticmethod
    def _run(model, version: int, loaded, name: str, arrays: dict, context) -> dict:
        """The signature's numpy outputs (batched with concurrent requests when it is
        row-wise); a model error is INVALID_ARGUMENT naming what is wrong."""
        try:
            return model.manager.run(version, loaded, name, arrays)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, error_line(err))

    # -- PredictionService -------------------------------------------------------------
    def Predict(self, request, context):  # noqa: N802 (gRPC naming)
        version, loaded = self._servable(request.model_spec, context, request.inputs)
        model = self.models[request.model_spec.name]
        name = request.model_spec.signature_name or "serving_default"
        fn = self._signature(loaded, name, context)
        specs = fn.structured_input_signature[1]
        missing = [k for k in specs if k not in request.inputs]
        unknown = [k for k in request.inputs if k not in specs]
        if missing or unknown:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"inputs must be {sorted(specs)}: missing {missing}, unknown {unknown}",
            )
        arrays: dict[str, np.ndarray] = {}
        for key, spec in specs.items():
            try:
                array = tensor_to_array(request.inputs[key])
            except (TypeError, ValueError) as err:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"input '{key}': {err}")
            if tf.as_dtype(array.dtype) != spec.dtype and not (
                spec.dtype == tf.string and array.dtype == object
            ):
                _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input '{key}' is {tf.as_dtype(array.dtype).name}, expected {spec.dtype.name}",
                )
            if not spec.shape.is_compatible_with(array.shape):
                _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input '{key}' has shape {list(array.shape)}, expected {spec.shape.as_list()}",
                )
            arrays[key] = array
        rows = max((a.shape[0] for a in arrays.values() if a.ndim), default=0)
        if rows > model.max_batch:
            _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request has {rows} rows, more than the limit of {model.max_batch}",
            )
        outputs = self._run(model, version, loaded, name, arrays, context)
        wanted = set(request.output_filter) or set(outputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = name
        for key, value in outputs.items():
            if key in wanted:
                array_to_tensor(value, response.outputs[key])
        return response

    def Regress(self, request, context):  # noqa: N802
        version, loaded = self._servable(request.model_spec, context)
        name = request.model_spec.signature_name or "regress"
        self._signature(loaded, name, context)  # (aborts on an unknown signature)
        kind = request.input.WhichOneof("kind")
        if kind == "example_list":
            examples = list(request.input.example_list.examples)
        elif kind == "example_list_with_context":
            group = request.input.example_list_with_context
            examples = []
            for example in group.examples:
                merged = tf.train.Example()
                merged.CopyFrom(group.context)
                merged.MergeFrom(example)
                examples.append(merged)
        else:
            examples = []
        if not examples:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "Regress needs at least one example")
        serialized = np.array([e.SerializeToString() for e in examples], dtype=object)
        model = self.models[request.model_spec.name]
        outputs = self._run(model, version, loaded, name, {"inputs": serialized}, context)
        response = regression_pb2.RegressionResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = name
        for value in np.asarray(outputs["outputs"]).reshape(-1):
            response.result.regressions.add(value=float(value))
        return response

    def Classify(self, request, context):  # noqa: N802
        _abort(
            context,
            grpc.StatusCode.UNIMPLEMENTED,
            "the exports have no classify signature; use Predict or Regress",
        )

    def MultiInference(self, request, context):  # noqa: N802
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not served")

    def GetModelMetadata(self, request, context):  # noqa: N802
        version, _ = self._servable(request.model_spec, context)
        fields = set(request.metadata_field) or {"signature_def"}
        if fields != {"signature_def"}:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metadata_field must be signature_def, got {sorted(fields)}",
            )
        saved = saved_model_pb2.SavedModel()
        base = self.models[request.model_spec.name].model_base
        path = os.path.join(base, str(version), "saved_model.pb")
        with tf.io.gfile.GFile(path, "rb") as fh:
            saved.ParseFromString(fh.read())
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in saved.meta_graphs[0].signature_def.items():
            if not key.startswith("__"):
                signatures.signature_def[key].CopyFrom(value)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signatures)
        return response

    # -- ModelService ------------------------------------------------------------------
    def GetModelStatus(self, request, context):  # noqa: N802
        spec = request.model_spec
        states = self._model(spec, context).manager.states()
        if spec.HasField("version"):
            states = [s for s in states if s.version == spec.version.value]
            if not states:
                _abort(
                    context,
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found: {spec.name} (version {spec.version.value})",
                )
        response = get_model_status_pb2.GetModelStatusResponse()
        for s in states:
            status = response.model_version_status.add(version=s.version, state=_STATES[s.state])
            status.status.error_code = _UNKNOWN if s.state == "END" else _OK
            status.status.error_message = s.error
        return response

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, "model config files are not served yet")


def make_grpc_server(
    models, host: str = "127.0.0.1", port: int = 8500, workers: int = 16, metrics=None
) -> tuple[grpc.Server, int]:
    """A started gRPC server for ``models`` (a `ModelServer` or ``{name: ModelServer}``,
    e.g. the REST server's ``models``) and the port it listens on (``port=0`` picks a
    free one). A port in use raises ``OSError``."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.so_reuseport", 0),
        ],
    )
    service = GrpcService(models, metrics)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as err:
        raise OSError(f"cannot listen on {host}:{port} for gRPC ({err})") from None
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC (in use?)")
    server.start()
    return server, bound
