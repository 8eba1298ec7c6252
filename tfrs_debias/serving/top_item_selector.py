"""`TopItemSelector`: the top-k items for one user, by value-weighted debiased probability.

For one user (id + features) and N candidates: batch the features, run the debiased
path (never a bias feature), turn each task into a probability, combine with
``value_weights`` (``Σ_t w_t · p_t`` — probabilities, not raw logits, so tasks with
different base rates mix on one scale), drop excluded ids (already seen, blocked),
and return the top k with their scores and per-task probabilities.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.schema import Feature, ImpressionSchema

ProbabilityFn = Callable[[dict[str, tf.Tensor]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Selection:
    """One selected item."""

    item_id: int | str
    score: float
    probabilities: dict[str, float]


class TopItemSelector:
    """Selects top items with any debiased scorer.

    Build it with `from_estimator` (an in-memory model), `from_saved_model` (an
    export, ``saved_models/NAME`` or one version) or directly with a function mapping
    relevance features to ``{task: probabilities}``.

    Args:
      probability_fn: relevance features ``{name: [N]}`` -> ``{task: [N]}``.
      schema: the features the scorer reads.
      tasks: task names, in order.
      value_weights: default per-task weights of the score.
      served_features: the features the scorer reads (the estimator's
        ``served_features``). Defaults to the schema's relevance features.
    """

    def __init__(
        self,
        probability_fn: ProbabilityFn,
        schema: ImpressionSchema,
        tasks: Sequence[str],
        value_weights: Sequence[float],
        served_features: Sequence[Feature] | None = None,
    ):
        self.probability_fn = probability_fn
        self.served_features = tuple(
            schema.relevance_features if served_features is None else served_features
        )
        self.schema = schema
        self.tasks = tuple(tasks)
        self.value_weights = dict(zip(self.tasks, value_weights, strict=True))

    @classmethod
    def from_estimator(cls, model) -> TopItemSelector:
        def probs(features):
            p = model.debiased_probabilities(features).numpy()
            return {t: p[:, i] for i, t in enumerate(model.task_names)}

        return cls(
            probs,
            model.schema,
            model.task_names,
            model.config.value_weights,
            model.served_features,
        )

    @classmethod
    def from_saved_model(cls, path: str) -> TopItemSelector:
        from tfrs_debias.serving.loaded_export import LoadedExport

        export = LoadedExport(path)
        fn = export.task_probabilities("serving_default")

        def probs(features):
            p = fn(features)
            return {t: p[:, i] for i, t in enumerate(export.tasks)}

        return cls(probs, export.schema, export.tasks, export.value_weights, export.served_features)

    def select(
        self,
        user: Mapping[str, object],
        candidates: Mapping[str, Sequence] | Sequence,
        k: int = 10,
        exclude: Sequence = (),
        value_weights: Mapping[str, float] | None = None,
    ) -> list[Selection]:
        """Top ``k`` candidates for ``user``, best first.

        Args:
          user: the user id and user side features, ``{name: value}`` (and user-level
            popularity factors, when the export serves popularity).
          candidates: item ids, or ``{item feature: [N]}`` with the item id, the item
            side features (and item popularity factors when served).
          k: how many to return (fewer if fewer candidates remain).
          exclude: item ids never to return.
          value_weights: per-task weights overriding the defaults (missing tasks: 0).
        """
        if not isinstance(candidates, Mapping):
            candidates = {self.schema.item_id.name: list(candidates)}
        item_name = self.schema.item_id.name
        items = np.asarray(candidates[item_name])
        n = len(items)
        if n == 0:
            return []
        feats = {}
        for f in self.served_features:
            per_user = f.role in ("user_id", "user_feature")
            if per_user or (f.role == "popularity" and f.name in user):
                if f.name not in user:
                    raise ValueError(f"user feature '{f.name}' is missing")
                values = np.full(n, user[f.name])
            else:
                if f.name not in candidates:
                    raise ValueError(f"candidate feature '{f.name}' is missing")
                values = np.asarray(candidates[f.name])
                if len(values) != n:
                    raise ValueError(
                        f"candidate feature '{f.name}' has {len(values)} values, expected {n}"
                    )
            feats[f.name] = tf.constant(
                values.astype(object).astype(bytes) if f.dtype == "string" else values, f.tf_dtype
            )
        probs = self.probability_fn(feats)
        weights = (
            self.value_weights
            if value_weights is None
            else {t: float(value_weights.get(t, 0.0)) for t in self.tasks}
        )
        unknown = set(weights) - set(self.tasks)
        if unknown:
            raise ValueError(
                f"value weights for unknown tasks {sorted(unknown)}; tasks are {self.tasks}"
            )
        score = np.zeros(n)
        for t, w in weights.items():
            score = score + w * probs[t]
        allowed = (
            ~np.isin(items, np.asarray(list(exclude), dtype=items.dtype))
            if len(exclude)
            else np.ones(n, bool)
        )
        order = [i for i in np.argsort(-score, kind="stable") if allowed[i]][:k]
        return [
            Selection(
                item_id=items[i].item() if hasattr(items[i], "item") else items[i],
                score=float(score[i]),
                probabilities={t: float(probs[t][i]) for t in self.tasks},
            )
            for i in order
        ]


def read_candidates(value: str, schema: ImpressionSchema) -> dict[str, list]:
    """Candidates from ``"1,2,3"``, a file of one id per line, or a CSV with a header
    naming the item id and item side features."""
    item = schema.item_id
    if not os.path.exists(value):
        if os.sep in value or value.endswith((".csv", ".txt")):
            raise FileNotFoundError(f"{value}: candidates file not found")
        return {
            item.name: [item.parse_value(v.strip(), value) for v in value.split(",") if v.strip()]
        }
    with open(value, encoding="utf-8") as fh:
        first = fh.readline()
        fh.seek(0)
        if item.name in [c.strip() for c in first.split(",")]:
            reader = csv.DictReader(fh)
            cols: dict[str, list] = {name: [] for name in reader.fieldnames or []}
            for line, row in enumerate(reader, start=2):
                for name, v in row.items():
                    where = f"{value}: line {line}, column '{name}'"
                    cols[name].append(schema[name].parse_value(v, where) if name in schema else v)
            return cols
        return {
            item.name: [
                item.parse_value(line.strip(), f"{value}: line {i}")
                for i, line in enumerate(fh, start=1)
                if line.strip()
            ]
        }
