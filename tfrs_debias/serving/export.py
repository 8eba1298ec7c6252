"""`export_saved_model`: a trained estimator as a SavedModel in TF Serving's layout.

``saved_models/NAME/<version>/`` (integer versions; the next one by default) is written
to a temporary folder and renamed into place, so a reader never sees a half-written
version. Signatures (``saved_model_cli show --dir DIR --all`` lists them):

``serving_default``
    ids and side features only — no position, no device, no bias feature (popularity
    factors only if the model keeps some popularity, ``popularity_keep > 0``) — to
    ``{task}: [batch]`` debiased probabilities and ``score: [batch]``, the
    value-weighted ``Σ_t w_t · p_t``. Runs only the debiased towers.
``examples``
    ``examples: [batch]`` serialized ``tf.Example`` (only the relevance features
    are read) to the same outputs.
``regress``
    TF Serving's Regress API convention (method ``tensorflow/serving/regress``):
    ``inputs: [batch]`` serialized ``tf.Example`` -> ``outputs: [batch]`` score.
``biased``
    relevance and bias features to ``{task}: [batch]`` full click probabilities
    (the training path: for calibration and analysis, never for ranking).
``components`` (factorized models)
    relevance and bias features to ``{component}_{task}: [batch]`` component logits
    and ``gate_{component}_{task}: [batch]`` gate weights of the relevance components.
``select_top_k``
    one user's features (scalars), candidate item features ``[num_candidates]``,
    ``exclude_item_ids: [num_excluded]`` and ``k`` -> ``item_ids: [k]``,
    ``scores: [k]`` and ``{task}: [k]`` probabilities, best first.

``assets.extra/tfrs_debias.json`` records the schema, config and value weights;
``assets.extra/tf_serving_warmup_requests`` holds a warm-up request in TF Serving's
format (TF Serving replays it after loading, before the version takes traffic).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
from tensorflow.core.protobuf import saved_model_pb2

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import move_tree, remove_tree
from tfrs_debias.models.base import BaseEstimator
from tfrs_debias.models.config import resolve_value_weights
from tfrs_debias.models.factorized import COMPONENTS
from tfrs_debias.serving.loaded_export import METADATA_FILE, list_versions

REGRESS_METHOD = "tensorflow/serving/regress"


class ServingModule(tf.Module):
    """Holds the estimator and the serving functions; only what the signatures need
    is traced, so ``serving_default`` has no path to the bias towers."""

    def __init__(self, model: BaseEstimator, value_weights: Sequence[float]):
        super().__init__(name="tfrs_debias_serving")
        self.model = model
        self.schema = model.schema
        self.tasks = tuple(model.task_names)
        self.value_weights = tf.constant(list(value_weights), tf.float32)
        self.served = model.served_features

    def _outputs(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        out = {t: probabilities[:, i] for i, t in enumerate(self.tasks)}
        out["score"] = tf.linalg.matvec(probabilities, self.value_weights)
        return out

    def debiased(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        feats = {f.name: features[f.name] for f in self.served}
        return self._outputs(tf.sigmoid(self.model.debiased_logits(feats)))

    def parse_relevance(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        spec = {f.name: tf.io.FixedLenFeature([], f.tf_dtype) for f in self.served}
        return tf.io.parse_example(serialized, spec)

    def biased(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        probs = tf.sigmoid(self.model(features, training=False))
        return {t: probs[:, i] for i, t in enumerate(self.tasks)}

    def components(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = self.model.components(features, training=False)
        result = {}
        for k, comp in enumerate(COMPONENTS):
            for i, t in enumerate(self.tasks):
                result[f"{comp}_{t}"] = out["components"][:, i, k]
                if k < out["gates"].shape[-1]:  # the bias is combined, not gated
                    result[f"gate_{comp}_{t}"] = out["gates"][:, i, k]
        return result

    def select_top_k(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        item_name = self.schema.item_id.name
        num = tf.shape(features[item_name])[0]
        feats = {}
        for f in self.served:
            value = features[f.name]
            feats[f.name] = (
                tf.fill([num], value) if f.role in ("user_id", "user_feature") else value
            )
        out = self.debiased(feats)
        excluded = tf.reduce_any(
            tf.equal(feats[item_name][:, None], features["exclude_item_ids"][None, :]), axis=1
        )
        scores = tf.where(excluded, tf.fill([num], float("-inf")), out["score"])
        k = tf.minimum(features["k"], num - tf.reduce_sum(tf.cast(excluded, tf.int32)))
        top = tf.math.top_k(scores, k=tf.maximum(k, 0))
        result = {"item_ids": tf.gather(feats[item_name], top.indices), "scores": top.values}
        for t in self.tasks:
            result[t] = tf.gather(out[t], top.indices)
        return result


def _signatures(module: ServingModule) -> dict[str, tf.types.experimental.ConcreteFunction]:
    schema = module.schema
    relevance = {f.name: tf.TensorSpec([None], f.tf_dtype, name=f.name) for f in module.served}
    full = schema.serving_specs(include_bias=True)
    sigs = {
        "serving_default": tf.function(lambda **f: module.debiased(f)).get_concrete_function(
            **relevance
        ),
        "examples": tf.function(
            lambda examples: module.debiased(module.parse_relevance(examples))
        ).get_concrete_function(tf.TensorSpec([None], tf.string, name="examples")),
        "regress": tf.function(
            lambda inputs: {"outputs": module.debiased(module.parse_relevance(inputs))["score"]}
        ).get_concrete_function(tf.TensorSpec([None], tf.string, name="inputs")),
        "biased": tf.function(lambda **f: module.biased(f)).get_concrete_function(**full),
    }
    if module.model.has_components:
        sigs["components"] = tf.function(lambda **f: module.components(f)).get_concrete_function(
            **full
        )
    select_specs = {}
    for f in module.served:
        shape = [] if f.role in ("user_id", "user_feature") else [None]
        select_specs[f.name] = tf.TensorSpec(shape, f.tf_dtype, name=f.name)
    select_specs["exclude_item_ids"] = tf.TensorSpec(
        [None], schema.item_id.tf_dtype, name="exclude_item_ids"
    )
    select_specs["k"] = tf.TensorSpec([], tf.int32, name="k")
    sigs["select_top_k"] = tf.function(lambda **f: module.select_top_k(f)).get_concrete_function(
        **select_specs
    )
    return sigs


def next_version(base_dir: str) -> int:
    """1 + the largest integer version folder under ``base_dir`` (1 if none)."""
    versions = list_versions(base_dir)
    return (max(versions) + 1) if versions else 1


def _mark_regress(saved_model_dir: str) -> None:
    """TF2 saves every signature as a Predict one; TF Serving's Regress API needs the
    ``regress`` signature's method name set to ``tensorflow/serving/regress``."""
    path = os.path.join(saved_model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as fh:
        proto.ParseFromString(fh.read())
    for meta_graph in proto.meta_graphs:
        if "regress" in meta_graph.signature_def:
            meta_graph.signature_def["regress"].method_name = REGRESS_METHOD
    with tf.io.gfile.GFile(path, "wb") as fh:
        fh.write(proto.SerializeToString())


def export_saved_model(
    model: BaseEstimator,
    base_dir: str,
    version: int | None = None,
    value_weights: Mapping[str, float] | Sequence[float] | None = None,
    force: bool = False,
) -> str:
    """Exports ``model`` to ``base_dir/<version>/``; returns that path.

    Args:
      model: a trained estimator.
      base_dir: ``saved_models/NAME``.
      version: integer version. Defaults to the next free one.
      value_weights: per-task weights of ``score`` (a sequence, or a mapping with
        tasks left out at 0). Defaults to the model config's.
      force: replace an existing version. Defaults to False (an error).
    """
    auto = version is None
    version = next_version(base_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    final = os.path.join(base_dir, str(version))
    if tf.io.gfile.exists(final) and not force:
        raise FileExistsError(f"{final} exists; pass --force to overwrite version {version}")
    weights = resolve_value_weights(value_weights, model.task_names, model.config.value_weights)
    module = ServingModule(model, weights)
    tf.io.gfile.makedirs(base_dir)
    remove_stale_temporaries(base_dir)
    tmp = os.path.join(base_dir, f".tmp-{version}-{os.getpid()}")
    remove_tree(tmp)
    try:
        tf.saved_model.save(module, tmp, signatures=_signatures(module))
        _mark_regress(tmp)
        tf.io.gfile.makedirs(os.path.join(tmp, "assets.extra"))
        meta = {
            "model": model.config.model,
            "tasks": list(model.task_names),
            "value_weights": weights,
            "has_bias_part": model.has_bias_part,
            "served_features": [f.name for f in model.served_features],
            "schema": model.schema.to_dict(),
            "config": model.config.to_dict(),
        }
        with tf.io.gfile.GFile(os.path.join(tmp, METADATA_FILE), "w") as fh:
            fh.write(json.dumps(meta, indent=2))
        write_warmup_requests(module, tmp)
        if auto:
            final = _claim_next_version(tmp, base_dir)
        elif tf.io.gfile.exists(final):
            if not force:  # another export took it meanwhile
                raise FileExistsError(f"{final} exists; pass --force to overwrite it")
            old = f"{tmp}-old"
            move_tree(final, old)
            move_tree(tmp, final)
            remove_tree(old)
        elif not _claim(final):
            raise FileExistsError(f"{final} was just written by another export")
        else:
            _move_into_claimed(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise
    return final


#: TF Serving's warm-up file: a TFRecord of ``PredictionLog`` s it replays after loading.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def write_warmup_requests(module: ServingModule, export_dir: str, rows: int = 8) -> str:
    """Writes `WARMUP_FILE`: one ``serving_default`` request of ``rows`` candidates (ids
    0, empty strings, side features at 0), in TF Serving's format, so TF Serving — and
    `ModelManager` — run the model once before it takes traffic."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "serving_default"
    for f in module.served:
        if f.dtype == "string":
            value = np.full(rows, b"", dtype=object)
        else:
            value = np.zeros(rows, f.tf_dtype.as_numpy_dtype)
        request.inputs[f.name].CopyFrom(tf.make_tensor_proto(value, dtype=f.tf_dtype))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    path = os.path.join(export_dir, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())
    return path


def _claim(final: str) -> bool:
    """Atomically reserves the version folder ``final`` (an empty folder a complete
    export then replaces in one rename); False if it exists. On filesystems without
    atomic folder creation (object stores) this is a check, not a lock."""
    if "://" in final:
        return not tf.io.gfile.exists(final)
    try:
        os.mkdir(final)
    except FileExistsError:
        return False
    return True


def _move_into_claimed(tmp: str, final: str) -> None:
    if "://" in final:
        move_tree(tmp, final)
    else:
        os.replace(tmp, final)  # replaces the empty claimed folder atomically


def _claim_next_version(tmp: str, base_dir: str) -> str:
    """Moves the complete export ``tmp`` to the next free version: two exports running
    at once get different versions, never the same one."""
    while True:
        final = os.path.join(base_dir, str(next_version(base_dir)))
        if _claim(final):
            _move_into_claimed(tmp, final)
            return final


def remove_stale_temporaries(base_dir: str) -> list[str]:
    """Removes ``.tmp-*`` folders left by exports whose process is gone (killed during
    an export); returns them. Only local folders name a process that can be checked."""
    removed: list[str] = []
    if "://" in base_dir or not os.path.isdir(base_dir):
        return removed
    for name in os.listdir(base_dir):
        parts = name.split("-")
        if not name.startswith(".tmp-") or len(parts) < 3 or not parts[2].isdigit():
            continue
        pid = int(parts[2])
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        remove_tree(os.path.join(base_dir, name))
        removed.append(name)
    return removed
