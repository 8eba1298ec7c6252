"""Value rules for impression features, shared by the writer and `validate_files`.

Each rule looks at one feature's values as a numpy array and returns the indices that
break it with a message, so the writer and the validator say the same thing.
"""

from __future__ import annotations

import numpy as np

from tfrs_debias.schema import Feature


def value_problems(feature: Feature, values: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
    """``[(bad_indices, kind, message), ...]`` for the values of ``feature`` that break a rule.

    Rules: labels are 0 or 1; int categoricals with a declared range (``num_values``)
    lie in ``[0, num_values)``; floats are finite (propensities in ``(0, 1]``). String
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
