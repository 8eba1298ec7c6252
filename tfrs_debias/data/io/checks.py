"""Value rules for impression features, shared by the writer, `validate_files` and the
input pipeline.

`value_problems` looks at one feature's values as a numpy array and returns the indices
that break a rule with a message, so the writer and the validator say the same thing.
`batch_rules` states the same rules as vectorised TensorFlow predicates, which
``make_dataset`` asserts on every parsed batch: every record that trains or is evaluated
is checked, at the cost of a few reductions per batch (``benchmarks/stream_validation.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.schema import Feature, ImpressionSchema


def value_problems(feature: Feature, values: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
    """``[(bad_indices, kind, message), ...]`` for the values of ``feature`` that break a rule.

    Rules: int64 labels are 0 or 1 (float32 labels are real values); int categoricals
    with a declared range (``num_values``) lie in ``[0, num_values)``; floats are finite
    (propensities in ``(0, 1]``). String
    categoricals are open: a value outside a schema ``vocabulary`` maps to the unknown
    index and is summarised by `validate_files`, not rejected.
    """
    problems: list[tuple[np.ndarray, str, str]] = []
    if values.size == 0:
        return problems
    if feature.dtype == "float32":
        values = values.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            problems.append((bad, "not_finite", f"feature '{feature.name}' is NaN or inf"))
        if feature.role == "propensity":
            ok = np.isfinite(values)
            bad = np.flatnonzero(ok & ((values <= 0) | (values > 1)))
            if bad.size:
                problems.append(
                    (bad, "out_of_range", f"propensity '{feature.name}' must be in (0, 1]")
                )
    elif feature.dtype == "int64":
        if feature.role == "label":
            bad = np.flatnonzero((values != 0) & (values != 1))
            if bad.size:
                problems.append((bad, "bad_label", f"label '{feature.name}' must be 0 or 1"))
        if feature.num_values is not None:
            bad = np.flatnonzero((values < 0) | (values >= feature.num_values))
            if bad.size:
                problems.append(
                    (
                        bad,
                        "out_of_range",
                        f"'{feature.name}' out of range [0, {feature.num_values})",
                    )
                )
    return problems


def describe_value(values: np.ndarray, index: int) -> str:
    value = values[index]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return repr(value.item() if hasattr(value, "item") else value)


def column_kind_problem(feature: Feature, values: np.ndarray) -> str | None:
    """Why a numpy column cannot hold ``feature`` (wrong dtype), or None."""
    kind = values.dtype.kind
    if feature.dtype == "int64" and kind not in "iub":
        return f"column '{feature.name}' has dtype {values.dtype}, expected integers"
    if feature.dtype == "float32" and kind not in "fiu":
        return f"column '{feature.name}' has dtype {values.dtype}, expected floats"
    if feature.dtype == "string" and kind not in "SUO":
        return f"column '{feature.name}' has dtype {values.dtype}, expected strings or bytes"
    return None


def batch_rules(feature: Feature) -> list[tuple[Callable[[tf.Tensor], tf.Tensor], str]]:
    """`value_problems`' rules for ``feature`` as ``[(predicate, message), ...]``; each
    predicate maps a ``[batch]`` tensor to a ``[batch]`` bool tensor, True where the
    value is allowed. Missing features and wrong types or lengths are already parse errors."""
    rules: list[tuple[Callable[[tf.Tensor], tf.Tensor], str]] = []
    if feature.dtype == "float32":
        rules.append((tf.math.is_finite, f"feature '{feature.name}' is NaN or inf"))
        if feature.role == "propensity":
            rules.append(
                (
                    lambda x: tf.logical_or(
                        tf.logical_not(tf.math.is_finite(x)), (x > 0.0) & (x <= 1.0)
                    ),
                    f"propensity '{feature.name}' must be in (0, 1]",
                )
            )
    elif feature.dtype == "int64":
        if feature.role == "label":
            rules.append((lambda x: (x == 0) | (x == 1), f"label '{feature.name}' must be 0 or 1"))
        if feature.num_values is not None:
            n = feature.num_values

            def in_range(x: tf.Tensor, n: int = n) -> tf.Tensor:
                return (x >= 0) & (x < n)

            rules.append((in_range, f"'{feature.name}' out of range [0, {n})"))
    return rules


#: What an in-stream check failure says; `locate_problem` finds the record behind it.
STREAM_CHECK_MARKER = "record breaks a schema rule"


def check_batch(schema: ImpressionSchema) -> Callable[[dict], dict]:
    """A ``Dataset.map`` function that asserts `batch_rules` on a parsed batch and
    passes it on unchanged; a batch with a bad value fails with
    ``InvalidArgumentError`` naming the feature and the rule."""
    rules = {f.name: batch_rules(f) for f in schema.features}

    def check(batch: dict) -> dict:
        asserts = []
        for name, feature_rules in rules.items():
            if name not in batch:
                continue
            for predicate, message in feature_rules:
                asserts.append(
                    tf.debugging.Assert(
                        tf.reduce_all(predicate(batch[name])),
                        [f"{STREAM_CHECK_MARKER}: {message}"],
                        name="schema_rule",
                    )
                )
        if not asserts:
            return batch
        with tf.control_dependencies(asserts):
            return {k: tf.identity(v) for k, v in batch.items()}

    return check
