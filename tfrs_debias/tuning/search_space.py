"""`SearchSpace`: the hyper-parameters a tuner searches, per estimator family.

Each entry is a list of choices, ``{"min": a, "max": b, "log": bool}`` for a float
range, or a single value (fixed). Users narrow or fix any entry from JSON or the CLI.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tfrs_debias.models.config import doubly_robust_fits
from tfrs_debias.models.registry import estimator_entry

COMMON = {
    "embedding_dim": [16, 32, 64],
    "hidden_depth": [1, 2, 3],
    "hidden_width": [64, 128, 256],
    "learning_rate": {"min": 3e-4, "max": 3e-3, "log": True},
}
MMOE = {"num_experts": [0, 2, 4], "expert_width": [32, 64, 128]}
BIAS = {
    "bias_hidden_width": [16, 32, 64],
    "bias_feature_dropout": [0.0, 0.05, 0.1, 0.2],
    "observation_dropout": [0.0, 0.05, 0.1],
    "gradient_reversal": [0.0, 0.1, 0.3, 1.0],
}
MIXTURE = {
    "gate_width": [8, 16, 32],
    "component_width": [32, 64, 128],
    "item_marginal_alpha": [0.0, 0.25, 0.5, 1.0],
}
ANCHOR = {"anchor_weight": [0.03, 0.1, 0.3, 1.0], "bias_anchor_weight": [0.0, 0.1]}
#: Searched for every estimator when the logs carry a propensity (`for_schema`). The
#: best clip depends on the data's size: on simulated MNAR ratings (`benchmarks/mnar.py`)
#: 0.001 lifted IPS from -0.043 to -0.007 AUC against naive with 13k rows, and sank it
#: from -0.062 to -0.098 with 2.3k; 0.2 (weights at most 5x) took doubly robust learning
#: with uniform pairs and estimated propensities from +0.005 (clip 0.1) to +0.042,
#: +0.026 and +0.029 over three seeds with strong self-selection.
PROPENSITY = {
    "propensity_weighting": ["none", "ips", "snips"],
    "propensity_clip": [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
}

#: Hyper-parameter groups an estimator's registry entry names in ``search_groups``.
GROUPS: dict[str, dict[str, Any]] = {
    "common": COMMON,
    "mmoe": MMOE,
    "bias": BIAS,
    "mixture": MIXTURE,
    "anchor": ANCHOR,
}


def family(model: str) -> dict[str, Any]:
    """The default search space of a registered estimator (from its registry entry)."""
    entry = estimator_entry(model)
    space: dict[str, Any] = {}
    for group in entry.search_groups:
        space.update(GROUPS[group])
    return space


def read_space_file(path: str) -> dict[str, Any]:
    """A JSON object ``{name: [choices] | {min, max, log} | value}`` read through
    ``tf.io.gfile``; a missing file, bad JSON or another JSON value is a ``ValueError``
    naming the file."""
    from tfrs_debias.backend import tf  # only when a file is read
    from tfrs_debias.data.io.files import read_json

    try:
        data = read_json(path)
    except tf.errors.NotFoundError:
        raise ValueError(f"search space {path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"search space {path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"search space {path}: expected a JSON object of name: choices, got "
            f"{type(data).__name__}"
        )
    return data


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The space of one estimator family (``model``)."""

    model: str
    entries: Mapping[str, Any]

    @classmethod
    def default(cls, model: str) -> SearchSpace:
        return cls(model, family(model))

    def for_schema(self, schema) -> SearchSpace:
        """Adds the `PROPENSITY` entries when ``schema`` has a propensity feature (those
        already set are kept), with the doubly robust ``"dr"`` among the weightings on
        ratings data (no bias or popularity features), and its ``dr_pairs`` when the
        items have no side features."""
        if schema.propensity is None:
            return self
        entries: dict[str, Any] = dict(PROPENSITY)
        if doubly_robust_fits(schema):
            entries["propensity_weighting"] = [*entries["propensity_weighting"], "dr"]
            if not schema.by_role("item_feature"):
                entries["dr_pairs"] = ["batch", "uniform"]
        return SearchSpace(self.model, {**entries, **self.entries})

    def override(self, changes: Mapping[str, Any]) -> SearchSpace:
        """Narrows or fixes entries; unknown names are an error."""
        unknown = set(changes) - set(self.entries)
        if unknown:
            raise ValueError(
                f"unknown hyper-parameters {sorted(unknown)} for {self.model}; "
                f"known: {sorted(self.entries)}"
            )
        for name, value in changes.items():
            if isinstance(value, list) and not value:
                raise ValueError(f"hyper-parameter {name}: empty list of choices")
        return SearchSpace(self.model, {**self.entries, **changes})

    @classmethod
    def from_json(
        cls, model: str, path: str | None, fixes: Sequence[str] = (), schema=None
    ) -> SearchSpace:
        """The default space (with `PROPENSITY` when ``schema`` logs propensities),
        narrowed by a JSON file and ``NAME=VALUE`` fixes."""
        space = cls.default(model) if schema is None else cls.default(model).for_schema(schema)
        if path:
            space = space.override(read_space_file(path))
        fixed = {}
        for item in fixes:
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--fix {item!r}: expected NAME=VALUE")
            fixed[name] = json.loads(value) if value[:1] in "[{0123456789-.tfn" else value
        return space.override(fixed)

    def declare(self, hp) -> dict[str, Any]:
        """Registers every entry with a keras-tuner ``HyperParameters``; returns values."""
        values = {}
        for name, spec in self.entries.items():
            if isinstance(spec, list):
                values[name] = hp.Choice(name, spec) if len(spec) > 1 else hp.Fixed(name, spec[0])
            elif isinstance(spec, dict):
                values[name] = hp.Float(
                    name, spec["min"], spec["max"], sampling="log" if spec.get("log") else "linear"
                )
            else:
                values[name] = hp.Fixed(name, spec)
        return values


def config_fields(model: str, values: Mapping[str, Any], tasks: tuple[str, ...]) -> dict:
    """EstimatorConfig fields from the searched values."""
    depth, width = int(values["hidden_depth"]), int(values["hidden_width"])
    fields: dict[str, Any] = {
        "model": model,
        "tasks": list(tasks),
        "embedding_dim": int(values["embedding_dim"]),
        "hidden_units": [max(16, width // 2**i) for i in range(depth)],
        "learning_rate": float(values["learning_rate"]),
    }
    if "num_experts" in values:
        fields["num_experts"] = int(values["num_experts"])
        fields["expert_units"] = [int(values["expert_width"])]
    if "bias_hidden_width" in values:
        fields.update(
            bias_hidden_units=[int(values["bias_hidden_width"])],
            bias_feature_dropout=float(values["bias_feature_dropout"]),
            observation_dropout=float(values["observation_dropout"]),
            gradient_reversal=float(values["gradient_reversal"]),
        )
    if "gate_width" in values:
        fields.update(
            gate_units=[int(values["gate_width"])],
            component_units=[int(values["component_width"])],
            item_marginal_alpha=float(values["item_marginal_alpha"]),
        )
    if "propensity_weighting" in values:
        fields["propensity_weighting"] = str(values["propensity_weighting"])
        fields["propensity_clip"] = float(values.get("propensity_clip", 0.05))
        if "dr_pairs" in values:
            fields["dr_pairs"] = str(values["dr_pairs"])
    if "anchor_weight" in values:
        w = float(values["anchor_weight"])
        fields["anchor_weights"] = [w, w, float(values.get("bias_anchor_weight", 0.0))]
    return fields
