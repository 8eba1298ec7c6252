"""`ImpressionSchema`: the single source of truth for an impression log's features.

One object names every feature, its dtype and its role. It produces the ``tf.io``
parse spec (reader), the Keras inputs (models) and the serving ``TensorSpec`` s
(export), and is stored as ``schema.json`` next to the data, so renaming a feature
is a one-line change.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tfrs_debias.backend import keras, tf

DTYPES = ("int64", "float32", "string")
_DTYPE_ALIASES = {"bytes": "string", "str": "string", "float": "float32", "int": "int64"}
_TF_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}

#: Roles a feature can play. Exactly one ``user_id`` and one ``item_id``; at least one
#: ``label``; at most one ``request_id`` and one ``propensity``. ``popularity`` features
#: (float factors of item popularity / user activity, arXiv 2310.19251) feed the
#: popularity tower in training and are set to their neutral value at serving.
ROLES = (
    "user_id",
    "item_id",
    "bias",
    "label",
    "request_id",
    "propensity",
    "user_feature",
    "item_feature",
    "popularity",
)
_SINGLE_ROLES = ("user_id", "item_id", "request_id", "propensity")
_ROLE_DTYPES = {
    "user_id": ("int64", "string"),
    "item_id": ("int64", "string"),
    "label": ("int64", "float32"),
    "request_id": ("int64", "string"),
    "propensity": ("float32",),
    "popularity": ("float32",),
}

DEFAULT_TASKS = ("click", "like")
DEFAULT_DEVICES = ("phone", "desktop", "tv")


class SchemaError(ValueError):
    """A schema (or a schema file) that is inconsistent; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Feature:
    """One scalar feature of an impression record.

    Args:
      name: key in the ``tf.train.Example``.
      dtype: ``"int64"``, ``"float32"`` or ``"string"``.
      role: one of `ROLES`.
      num_values: for integer categorical features (``position``, an int side
        feature): valid values are ``0 .. num_values - 1``. Defaults to None
        (unbounded).
      vocabulary: for string categorical features (``device``): the known values.
        Defaults to None (any value).
      neutral_value: for bias features, the value that stands for "no bias" when a
        caller must feed one (the debiased path never reads bias features at all).
      description: free text for people.
    """

    name: str
    dtype: str
    role: str
    num_values: int | None = None
    vocabulary: tuple[str, ...] | None = None
    neutral_value: Any = None
    description: str = ""

    def __post_init__(self) -> None:
        dtype = _DTYPE_ALIASES.get(self.dtype, self.dtype)
        object.__setattr__(self, "dtype", dtype)
        if self.vocabulary is not None:
            object.__setattr__(self, "vocabulary", tuple(str(v) for v in self.vocabulary))
        where = f"feature '{self.name}'"
        if not self.name or not isinstance(self.name, str):
            raise SchemaError(f"feature name must be a non-empty string, got {self.name!r}")
        if dtype not in DTYPES:
            raise SchemaError(f"{where}: dtype {self.dtype!r} is not one of {DTYPES}")
        if self.role not in ROLES:
            raise SchemaError(f"{where}: role {self.role!r} is not one of {ROLES}")
        allowed = _ROLE_DTYPES.get(self.role)
        if allowed and dtype not in allowed:
            raise SchemaError(f"{where}: role {self.role} needs dtype in {allowed}, got {dtype}")
        if self.num_values is not None and (dtype != "int64" or self.num_values < 1):
            raise SchemaError(f"{where}: num_values needs an int64 feature and a value >= 1")
        if self.vocabulary is not None and dtype != "string":
            raise SchemaError(f"{where}: vocabulary needs a string feature")

    def parse_value(self, text: str, where: str = "") -> Any:
        """``text`` (from a CSV cell, a flag, a JSON string) as this feature's Python
        value; a clear ``ValueError`` naming ``where`` when it is not one."""
        try:
            if self.dtype == "int64":
                return int(text)
            if self.dtype == "float32":
                return float(text)
            return str(text)
        except (TypeError, ValueError):
            where = f"{where}: " if where else ""
            raise ValueError(
                f"{where}{text!r} is not a valid {self.dtype} for '{self.name}'"
            ) from None

    @property
    def tf_dtype(self) -> tf.DType:
        return _TF_DTYPES[self.dtype]

    @property
    def is_categorical(self) -> bool:
        return self.dtype == "string" or self.num_values is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "role": self.role}
        for key in ("num_values", "vocabulary", "neutral_value", "description"):
            value = getattr(self, key)
            if value is not None and not (key == "description" and not value):
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SchemaError(f"feature {data.get('name', '?')!r}: unknown keys {sorted(unknown)}")
        missing = {"name", "dtype", "role"} - set(data)
        if missing:
            raise SchemaError(f"feature {data.get('name', '?')!r}: missing keys {sorted(missing)}")
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class ImpressionSchema:
    """The features of an impression log and what each one is for.

    Example:

    >>> schema = ImpressionSchema.default(tasks=("click",))
    >>> schema.tasks
    ('click',)
    >>> sorted(schema.parse_spec())[:3]
    ['click', 'device', 'item_id']
    """

    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        feats = tuple(f if isinstance(f, Feature) else Feature.from_dict(f) for f in self.features)
        object.__setattr__(self, "features", feats)
        names = [f.name for f in feats]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"duplicate feature names: {dupes}")
        for role in _SINGLE_ROLES:
            found = [f.name for f in feats if f.role == role]
            if len(found) > 1:
                raise SchemaError(f"role {role} must appear at most once, found {found}")
        for role in ("user_id", "item_id", "label"):
            if not any(f.role == role for f in feats):
                raise SchemaError(f"schema has no feature with role {role!r}")

    # -- lookups ---------------------------------------------------------------
    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"schema has no feature {name!r}; it has {self.names}")

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def by_role(self, *roles: str) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.role in roles)

    def _single(self, role: str) -> Feature | None:
        found = self.by_role(role)
        return found[0] if found else None

    @property
    def user_id(self) -> Feature:
        return self._single("user_id")  # type: ignore[return-value]

    @property
    def item_id(self) -> Feature:
        return self._single("item_id")  # type: ignore[return-value]

    @property
    def request_id(self) -> Feature | None:
        return self._single("request_id")

    @property
    def propensity(self) -> Feature | None:
        return self._single("propensity")

    @property
    def tasks(self) -> tuple[str, ...]:
        """Label names, in schema order: the model's task order."""
        return tuple(f.name for f in self.by_role("label"))

    @property
    def bias_features(self) -> tuple[Feature, ...]:
        return self.by_role("bias")

    @property
    def relevance_features(self) -> tuple[Feature, ...]:
        """What the debiased (serving) path may read: ids and side features."""
        return self.by_role("user_id", "user_feature", "item_id", "item_feature")

    @property
    def popularity_features(self) -> tuple[Feature, ...]:
        return self.by_role("popularity")

    @property
    def user_features(self) -> tuple[Feature, ...]:
        return self.by_role("user_feature")

    @property
    def item_features(self) -> tuple[Feature, ...]:
        return self.by_role("item_feature")

    # -- what TensorFlow needs -------------------------------------------------
    def parse_spec(self, include_labels: bool = True) -> dict[str, tf.io.FixedLenFeature]:
        """``tf.io.parse_example`` spec: every feature is one scalar per record."""
        return {
            f.name: tf.io.FixedLenFeature([], f.tf_dtype)
            for f in self.features
            if include_labels or f.role != "label"
        }

    def keras_inputs(self, include_bias: bool = True) -> dict[str, keras.Input]:
        """Scalar Keras inputs (shape ``[batch]``) for ids, side and bias features."""
        roles = ["user_id", "user_feature", "item_id", "item_feature"]
        if include_bias:
            roles += ["bias", "popularity"]
        return {
            f.name: keras.Input(shape=(), dtype=f.tf_dtype, name=f.name)
            for f in self.by_role(*roles)
        }

    def serving_specs(
        self, include_bias: bool = False, include_popularity: bool = False
    ) -> dict[str, tf.TensorSpec]:
        """``TensorSpec`` s ``[None]`` for a serving signature; no bias (or popularity)
        features by default."""
        feats = self.relevance_features
        if include_bias:
            feats += self.bias_features + self.popularity_features
        elif include_popularity:
            feats += self.popularity_features
        return {f.name: tf.TensorSpec([None], f.tf_dtype, name=f.name) for f in feats}

    @property
    def real_valued_tasks(self) -> tuple[str, ...]:
        """Labels with real values (``float32``: watch time, a rating, a grade); int64
        labels are binary (0/1)."""
        return tuple(f.name for f in self.by_role("label") if f.dtype == "float32")

    def for_tasks(self, tasks: Sequence[str] | None) -> ImpressionSchema:
        """The schema keeping only the labels ``tasks`` (all labels when None); a task
        that is not a label is an error."""
        if not tasks:
            return self
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise SchemaError(f"tasks {unknown} are not labels of the schema {self.tasks}")
        return self.replace(drop=[t for t in self.tasks if t not in tasks])

    # -- building and (de)serialising -----------------------------------------
    def replace(self, *, add: Iterable[Feature] = (), drop: Iterable[str] = ()) -> ImpressionSchema:
        """A copy with ``drop`` features removed and ``add`` features appended."""
        drop = set(drop)
        unknown = drop - set(self.names)
        if unknown:
            raise SchemaError(f"cannot drop unknown features {sorted(unknown)}")
        kept = tuple(f for f in self.features if f.name not in drop)
        return ImpressionSchema(kept + tuple(add))

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImpressionSchema:
        if not isinstance(data, Mapping) or "features" not in data:
            raise SchemaError("schema JSON must be an object with a 'features' list")
        if not isinstance(data["features"], list):
            raise SchemaError("schema JSON 'features' must be a list")
        return cls(tuple(Feature.from_dict(f) for f in data["features"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ImpressionSchema:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> None:
        """Writes ``path`` atomically (temporary file, then rename)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        with tf.io.gfile.GFile(tmp, "w") as fh:
            fh.write(self.to_json() + "\n")
        tf.io.gfile.rename(tmp, path, overwrite=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImpressionSchema:
        path = os.fspath(path)
        try:
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(path)
            with tf.io.gfile.GFile(path, "r") as fh:
                return cls.from_json(fh.read())
        except FileNotFoundError:
            raise SchemaError(f"{path}: schema file not found") from None
        except json.JSONDecodeError as err:
            raise SchemaError(f"{path}: not valid JSON ({err})") from None
        except SchemaError as err:
            raise SchemaError(f"{path}: {err}") from None

    @classmethod
    def default(
        cls,
        tasks: Sequence[str] = DEFAULT_TASKS,
        num_positions: int | None = None,
        devices: Sequence[str] | None = None,
        user_features: Mapping[str, int] | None = None,
        item_features: Mapping[str, int] | None = None,
        request_id: bool = True,
        bias: bool = True,
    ) -> ImpressionSchema:
        """The default impression-log schema that external logs can use as is.

        ``user_id``, ``item_id``, ``request_id`` int64; ``position`` int64 (0-based rank
        within the slate); ``device`` string; one int64 0/1 label per task.
        ``user_features`` / ``item_features`` map extra int64 categorical side features
        to their number of values.

        Position and device are open by default: their values (any device or surface
        name, any rank) come from the training data like ids do, and values unseen in
        training map to the shared unknown index. ``num_positions`` fixes the rank range
        (a record outside it is then an error); ``devices`` names the known devices
        (others still map to unknown, never a rejected record).
        """
        feats = [
            Feature("user_id", "int64", "user_id"),
            Feature("item_id", "int64", "item_id"),
        ]
        if request_id:
            feats.append(Feature("request_id", "int64", "request_id"))
        if bias:
            feats.append(
                Feature("position", "int64", "bias", num_values=num_positions, neutral_value=0)
            )
            feats.append(
                Feature(
                    "device",
                    "string",
                    "bias",
                    vocabulary=tuple(devices) if devices else None,
                    neutral_value="",
                )
            )
        for name, n in (user_features or {}).items():
            feats.append(Feature(name, "int64", "user_feature", num_values=n))
        for name, n in (item_features or {}).items():
            feats.append(Feature(name, "int64", "item_feature", num_values=n))
        if not tasks:
            raise SchemaError("at least one task (label) is needed")
        feats.extend(Feature(t, "int64", "label") for t in tasks)
        return cls(tuple(feats))


def resolve_schema(
    schema_file: str | None, data_files: Sequence[str] = (), tasks: Sequence[str] | None = None
) -> ImpressionSchema:
    """The schema a command should use: ``schema_file``; else ``schema.json`` beside the
    first data file; else the default schema for ``tasks``. Restricted to the labels
    ``tasks`` when given (`ImpressionSchema.for_tasks`: an unknown task is an error)."""
    if schema_file:
        return ImpressionSchema.load(schema_file).for_tasks(tasks)
    from tfrs_debias.data.io.log_directory import LogDirectory

    folder = LogDirectory.of_files(list(data_files))
    if folder is not None:
        return folder.schema(tasks).for_tasks(tasks)
    return ImpressionSchema.default(tasks=tuple(tasks) if tasks else DEFAULT_TASKS)
