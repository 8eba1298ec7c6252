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
    the third pass in one call (`Reranker`): one user's features (scalars), candidate
    item features ``[N]``, ``exclude_item_ids``, ``not_interested_item_ids``,
    ``item_age`` (``[N]`` or empty), ``value_weights`` ``[num_tasks]``, ``k`` and the
    re-ranking knobs (``diversity_lambda``, ``similarity_threshold``, ``category_cap``,
    ``freshness_weight``, ``freshness_half_life``, ``not_interested_threshold``) ->
    ``item_ids: [m]``, ``scores: [m]`` (freshness-boosted), ``{task}: [m]``,
    ``base_ranks: [m]`` (rank by plain score), best first, and per candidate
    ``status: [N]`` (`reranker.STATUS_NAMES`) and ``blocked_by: [N]`` (index of the
    candidate that removed it, -1 if none). Every input is required, as in TF Serving;
    `TopItemSelector` fills the defaults.

``assets.extra/tfrs_debias.json`` records the schema, config and value weights;
``assets.extra/tf_serving_warmup_requests`` holds a warm-up request in TF Serving's
format (TF Serving replays it after loading, before the version takes traffic).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence

from tensorflow.core.protobuf import saved_model_pb2

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import is_url, move_tree, remove_tree
from tfrs_debias.models.base import BaseEstimator
from tfrs_debias.models.config import resolve_value_weights
from tfrs_debias.models.factorized import COMPONENTS
from tfrs_debias.serving.loaded_export import METADATA_FILE, list_versions, warmup_inputs
from tfrs_debias.serving.reranker import OPTION_SPECS, Reranker

REGRESS_METHOD = "tensorflow/serving/regress"


def _without_keras_traces():
    """A scope in which ``tf.saved_model.save`` leaves out the Keras layers' own call
    traces (what ``model.save(..., save_traces=False)`` does for a Keras root). The
    signatures do not use them; they only let Keras rebuild the layers from the
    SavedModel, which our exports are not for. Leaving them out cut a small export from
    64 functions to 35, its save from 2.0 to 1.1 s and its ``tf.saved_model.load`` from
    0.53 to 0.33 s (docs/stack.md). tf-keras has no public switch for a non-Keras root,
    so this uses its saving module's option scope, and saves with the traces if that
    module ever moves."""
    try:
        from tf_keras.src.saving.legacy.saved_model import utils
    except ImportError:  # pragma: no cover - a tf-keras without this module
        return contextlib.nullcontext()
    return utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=True)


class ServingModule(tf.Module):
    """Holds the estimator and the serving functions; only what the signatures need
    is traced, so ``serving_default`` has no path to the bias towers."""

    def __init__(
        self,
        model: BaseEstimator,
        value_weights: Sequence[float],
        reranker: Reranker | None = None,
    ):
        super().__init__(name="tfrs_debias_serving")
        self.model = model
        self.schema = model.schema
        self.tasks = tuple(model.task_names)
        self.value_weights = tf.constant(list(value_weights), tf.float32)
        self.served = model.served_features
        self.reranker = reranker or default_reranker(model.schema)

    def _outputs(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        out = {t: probabilities[:, i] for i, t in enumerate(self.tasks)}
        out["score"] = tf.linalg.matvec(probabilities, self.value_weights)
        return out

    def debiased(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        feats = {f.name: features[f.name] for f in self.served}
        return self._outputs(self.model.debiased_probabilities(feats))

    def parse_relevance(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        spec = {f.name: tf.io.FixedLenFeature([], f.tf_dtype) for f in self.served}
        return tf.io.parse_example(serialized, spec)

    def biased(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        probs = self.model.task_values(self.model(features, training=False))
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
        weights = tf.cast(features["value_weights"], tf.float32)
        check = tf.debugging.assert_equal(
            tf.size(weights),
            len(self.tasks),
            message=f"value_weights must have one weight per task {list(self.tasks)}",
        )
        with tf.control_dependencies([check]):
            probabilities = self.model.debiased_probabilities(feats)
        scores = tf.linalg.matvec(probabilities, weights)
        not_interested = features["not_interested_item_ids"]
        sim, ni_sim = self.reranker.similarities(self.model, feats, not_interested)
        ranked = self.reranker.rerank(
            scores,
            feats[item_name],
            sim,
            ni_sim,
            self.reranker.same_category(feats),
            features["item_age"],
            features["exclude_item_ids"],
            not_interested,
            features["k"],
            {name: features[name] for name in OPTION_SPECS},
        )
        top = ranked["indices"]
        result = {
            "item_ids": tf.gather(feats[item_name], top),
            "scores": ranked["scores"],
            "base_ranks": ranked["base_ranks"],
            "status": ranked["status"],
            "blocked_by": ranked["blocked_by"],
        }
        for i, t in enumerate(self.tasks):
            result[t] = tf.gather(probabilities[:, i], top)
        return result

    def select_specs(self) -> dict[str, tf.TensorSpec]:
        """The ``select_top_k`` inputs: user features as scalars, the rest ``[N]``."""
        specs = {}
        for f in self.served:
            shape = [] if f.role in ("user_id", "user_feature") else [None]
            specs[f.name] = tf.TensorSpec(shape, f.tf_dtype, name=f.name)
        item = self.schema.item_id.tf_dtype
        specs["exclude_item_ids"] = tf.TensorSpec([None], item, name="exclude_item_ids")
        specs["not_interested_item_ids"] = tf.TensorSpec(
            [None], item, name="not_interested_item_ids"
        )
        specs["item_age"] = tf.TensorSpec([None], tf.float32, name="item_age")
        specs["value_weights"] = tf.TensorSpec([None], tf.float32, name="value_weights")
        specs["k"] = tf.TensorSpec([], tf.int32, name="k")
        specs.update(OPTION_SPECS)
        return specs


def default_reranker(schema) -> Reranker:
    """Embedding similarity; caps count the first categorical item feature, if any."""
    categorical = [f for f in schema.item_features if f.dtype != "float32"]
    return Reranker("embedding", categorical[0].name if categorical else None)


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
    sigs["select_top_k"] = tf.function(lambda **f: module.select_top_k(f)).get_concrete_function(
        **module.select_specs()
    )
    return sigs


def check_reranker(reranker: Reranker, model: BaseEstimator) -> None:
    """The similarity and category features must be served item features."""
    items = {f.name for f in model.served_features if f.role == "item_feature"}
    for what, name in (
        ("similarity", reranker.similarity),
        ("category", reranker.category_feature),
    ):
        if name is None or (what == "similarity" and name == "embedding"):
            continue
        if name not in items:
            raise ValueError(
                f"{what} feature '{name}' is not an item feature the model serves; "
                f"item features: {sorted(items) or 'none'}"
            )


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
    reranker: Reranker | None = None,
) -> str:
    """Exports ``model`` to ``base_dir/<version>/``; returns that path.

    Args:
      model: a trained estimator.
      base_dir: ``saved_models/NAME``.
      version: integer version. Defaults to the next free one.
      value_weights: per-task weights of ``score`` (a sequence, or a mapping with
        tasks left out at 0). Defaults to the model config's.
      force: replace an existing version. Defaults to False (an error).
      reranker: the ``select_top_k`` re-ranking's similarity and category feature.
        Defaults to `default_reranker`.
    """
    auto = version is None
    version = next_version(base_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    final = os.path.join(base_dir, str(version))
    if tf.io.gfile.exists(final) and not force:
        raise FileExistsError(f"{final} exists; pass --force to overwrite version {version}")
    weights = resolve_value_weights(value_weights, model.task_names, model.config.value_weights)
    if reranker is not None:
        check_reranker(reranker, model)
    module = ServingModule(model, weights, reranker)
    tf.io.gfile.makedirs(base_dir)
    remove_stale_temporaries(base_dir)
    tmp = os.path.join(base_dir, f".tmp-{version}-{os.getpid()}")
    remove_tree(tmp)
    try:
        with _without_keras_traces():
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
            "reranker": module.reranker.get_config(),
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
    specs = {f.name: tf.TensorSpec([None], f.tf_dtype) for f in module.served}
    for name, value in warmup_inputs(specs, rows).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=specs[name].dtype))
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
    if is_url(final):
        return not tf.io.gfile.exists(final)
    try:
        os.mkdir(final)
    except FileExistsError:
        return False
    return True


def _move_into_claimed(tmp: str, final: str) -> None:
    if is_url(final):
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
    if is_url(base_dir) or not os.path.isdir(base_dir):
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
