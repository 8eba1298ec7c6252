"""`LoadedExport`: the one loader for exports in a Python program, used by the evaluator
and the selector (the server loads its versions as TF Serving does, with
`SessionServable`, and finds them with `list_versions` here).

It resolves ``saved_models/NAME`` to a version folder, reads the export's metadata
(``assets.extra/tfrs_debias.json``: tasks, value weights, schema, served features,
whether there is a bias part) and loads the SavedModel once. Callers ask it for a
signature as a numpy function; what the served path reads comes from the metadata
the estimator wrote (`BaseEstimator.served_features`), not from guesses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import read_json
from tfrs_debias.schema import Feature, ImpressionSchema

METADATA_FILE = os.path.join("assets.extra", "tfrs_debias.json")


def list_versions(base_dir: str) -> list[int]:
    """Integer version folders (ASCII digits only) under ``base_dir``, ascending."""
    if not tf.io.gfile.isdir(base_dir):
        return []
    names = [d.rstrip("/") for d in tf.io.gfile.listdir(base_dir)]
    return sorted(
        int(d)
        for d in names
        if d.isascii() and d.isdigit() and tf.io.gfile.isdir(os.path.join(base_dir, d))
    )


def resolve_version_dir(path: str) -> str:
    """``saved_models/NAME`` -> its newest version folder; a version folder as is."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path}: no SavedModel and no integer version folders")
    return os.path.join(path, str(versions[-1]))


def warmup_inputs(specs: Mapping[str, Any], rows: int = 1) -> dict[str, np.ndarray]:
    """Placeholder inputs for a signature's ``{name: TensorSpec}``: ``rows`` rows where
    a dimension is unknown, ids and numbers 0, strings empty. What the export's warm-up
    request holds and what `ModelManager` calls an export without one with."""
    out = {}
    for name, spec in specs.items():
        shape = [rows if d is None else d for d in spec.shape.as_list()]
        if spec.dtype == tf.string:
            out[name] = np.full(shape, b"", dtype=object)
        else:
            out[name] = np.zeros(shape, spec.dtype.as_numpy_dtype)
    return out


def load_metadata(version_dir: str) -> dict:
    path = os.path.join(version_dir, METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{version_dir}: not a tfrs_debias export (no {METADATA_FILE})")
    return read_json(path)


class LoadedExport:
    """One loaded export version.

    Args:
      path: ``saved_models/NAME`` (newest version) or one version folder.
    """

    def __init__(self, path: str):
        self.version_dir = resolve_version_dir(path)
        self.metadata: dict[str, Any] = load_metadata(self.version_dir)
        self.saved_model = tf.saved_model.load(self.version_dir)
        self.schema = ImpressionSchema.from_dict(self.metadata["schema"])
        self.tasks: tuple[str, ...] = tuple(self.metadata["tasks"])
        self.value_weights: list[float] = list(self.metadata["value_weights"])
        self.has_bias_part = bool(self.metadata.get("has_bias_part", True))
        names = self.metadata.get("served_features")
        if names is None:  # exports written before served_features was recorded
            names = [f.name for f in self.schema.relevance_features]
        self.served_features: tuple[Feature, ...] = tuple(self.schema[n] for n in names)

    @property
    def signatures(self) -> Mapping[str, Any]:
        return self.saved_model.signatures

    def signature_inputs(self, name: str) -> set[str]:
        return set(self.signatures[name].structured_input_signature[1])

    def task_probabilities(self, name: str) -> Callable[[dict], np.ndarray]:
        """Signature ``name`` as ``features -> [batch, num_tasks]`` probabilities; extra
        features are ignored (only the signature's inputs are fed)."""
        fn = self.signatures[name]
        inputs = self.signature_inputs(name)

        def call(features: dict) -> np.ndarray:
            out = fn(**{k: v for k, v in features.items() if k in inputs})
            return np.stack([out[t].numpy() for t in self.tasks], axis=-1)

        return call
