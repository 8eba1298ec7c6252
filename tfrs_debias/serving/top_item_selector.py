"""`TopItemSelector`: the top-k items for one user, by value-weighted debiased
probability, after the third pass (exclusions, freshness, diversity, category caps).

For one user (id + features) and N candidates: batch the features, run the debiased
path (never a bias feature), turn each task into a probability, combine with
``value_weights`` (``Σ_t w_t · p_t`` — probabilities, not raw logits, so tasks with
different base rates mix on one scale) and re-rank with `Reranker`. The selector runs
the ``select_top_k`` code itself: the exported signature (`from_saved_model`) or the
same function on an in-memory estimator (`from_estimator`), so the Python selector and
TF Serving give the same answer. `rank` also says what each step removed or moved.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import is_file, is_url, text_lines
from tfrs_debias.schema import Feature, ImpressionSchema
from tfrs_debias.serving.reranker import (
    BELOW_K,
    SELECTED,
    STATUS_NAMES,
    RerankOptions,
)

SelectFn = Callable[..., Mapping[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class Selection:
    """One selected item; ``base_rank`` is its 0-based rank by the plain score among
    the candidates left after the exclusions."""

    item_id: int | str
    score: float
    probabilities: dict[str, float]
    base_rank: int | None = None


@dataclasses.dataclass(frozen=True)
class RerankEvent:
    """What a re-ranking step did to one item: ``action`` is a `STATUS_NAMES` entry
    other than ``selected``/``below_k``, or ``moved``; ``because`` is the item that
    caused a removal, ``detail`` says more."""

    item_id: int | str
    action: str
    because: int | str | None = None
    detail: str = ""

    def __str__(self) -> str:
        why = f" (because of item {self.because})" if self.because is not None else ""
        return f"item {self.item_id}: {self.action}{why}{' ' + self.detail if self.detail else ''}"


@dataclasses.dataclass(frozen=True)
class Ranking:
    """`TopItemSelector.rank`'s answer: the picks, best first, and the events."""

    picks: list[Selection]
    events: list[RerankEvent]


def _py(value):
    return value.item() if hasattr(value, "item") else value


class TopItemSelector:
    """Selects top items with an export or an in-memory estimator.

    Build it with `from_estimator` (an in-memory model) or `from_saved_model` (an
    export, ``saved_models/NAME`` or one version).

    Args:
      select_fn: ``select_top_k`` as a function of its named input tensors.
      schema: the model's schema.
      tasks: task names, in order.
      value_weights: default per-task weights of the score.
      served_features: the features the scorer reads (the estimator's
        ``served_features``).
      reranker: the export's re-ranking settings (``similarity``, ``category_feature``).
    """

    def __init__(
        self,
        select_fn: SelectFn,
        schema: ImpressionSchema,
        tasks: Sequence[str],
        value_weights: Sequence[float],
        served_features: Sequence[Feature],
        reranker: Mapping[str, object] | None = None,
    ):
        self.select_fn = select_fn
        self.schema = schema
        self.tasks = tuple(tasks)
        self.value_weights = dict(zip(self.tasks, value_weights, strict=True))
        self.served_features = tuple(served_features)
        self.reranker = dict(reranker or {})

    @classmethod
    def from_estimator(cls, model, reranker=None) -> TopItemSelector:
        """``reranker``: a `Reranker` (default: the export's default for the schema)."""
        from tfrs_debias.serving.export import ServingModule

        module = ServingModule(model, model.config.value_weights, reranker)
        fn = tf.function(lambda f: module.select_top_k(f), input_signature=[module.select_specs()])
        return cls(
            lambda **f: fn(f),
            model.schema,
            model.task_names,
            model.config.value_weights,
            model.served_features,
            module.reranker.get_config(),
        )

    @classmethod
    def from_saved_model(cls, path: str) -> TopItemSelector:
        from tfrs_debias.serving.loaded_export import LoadedExport

        return cls.from_export(LoadedExport(path))

    @classmethod
    def from_export(cls, export) -> TopItemSelector:
        """From a `LoadedExport` already in memory."""
        if "select_top_k" not in export.signatures or "item_age" not in export.signature_inputs(
            "select_top_k"
        ):
            raise ValueError(
                f"{export.version_dir}: this export's select_top_k predates re-ranking; "
                "export the run again"
            )
        return cls(
            export.signatures["select_top_k"],
            export.schema,
            export.tasks,
            export.value_weights,
            export.served_features,
            export.metadata.get("reranker"),
        )

    def inputs(
        self,
        user: Mapping[str, object],
        candidates: Mapping[str, Sequence] | Sequence,
        k: int = 10,
        exclude: Sequence = (),
        value_weights: Mapping[str, float] | None = None,
        not_interested: Sequence = (),
        item_age: Sequence[float] | None = None,
        options: RerankOptions | Mapping[str, float] | None = None,
    ) -> dict[str, tf.Tensor]:
        """The ``select_top_k`` input tensors for one request (what a TF Serving
        client sends); the arguments are `rank` 's."""
        if not isinstance(candidates, Mapping):
            candidates = {self.schema.item_id.name: list(candidates)}
        item = self.schema.item_id
        n = len(np.asarray(candidates[item.name]))
        feats: dict[str, tf.Tensor] = {}
        for f in self.served_features:
            per_user = f.role in ("user_id", "user_feature")
            if per_user or (f.role == "popularity" and f.name in user):
                if f.name not in user:
                    raise ValueError(f"user feature '{f.name}' is missing")
                values = np.asarray(user[f.name]) if per_user else np.full(n, user[f.name])
            else:
                if f.name not in candidates:
                    raise ValueError(f"candidate feature '{f.name}' is missing")
                values = np.asarray(candidates[f.name])
                if len(values) != n:
                    raise ValueError(
                        f"candidate feature '{f.name}' has {len(values)} values, expected {n}"
                    )
            feats[f.name] = _tensor(values, f)
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
        ages = np.asarray([] if item_age is None else item_age, np.float32).reshape(-1)
        if ages.size not in (0, n):
            raise ValueError(f"item_age has {ages.size} values, expected {n} (one per candidate)")
        if not isinstance(options, RerankOptions):
            options = RerankOptions.from_mapping(options)
        if options.category_cap and not self.reranker.get("category_feature"):
            raise ValueError("category_cap needs an export with a category feature")
        feats["exclude_item_ids"] = _tensor(np.asarray(list(exclude)), item)
        feats["not_interested_item_ids"] = _tensor(np.asarray(list(not_interested)), item)
        feats["item_age"] = tf.constant(ages, tf.float32)
        feats["value_weights"] = tf.constant([weights[t] for t in self.tasks], tf.float32)
        feats["k"] = tf.constant(int(np.clip(k, 0, 2**31 - 1)), tf.int32)
        feats.update(options.tensors())
        return feats

    def rank(
        self,
        user: Mapping[str, object],
        candidates: Mapping[str, Sequence] | Sequence,
        k: int = 10,
        exclude: Sequence = (),
        **request,
    ) -> Ranking:
        """Top ``k`` candidates for ``user``, best first, and what re-ranking did.

        Args:
          user: the user id and user side features, ``{name: value}`` (and user-level
            popularity factors, when the export serves popularity).
          candidates: item ids, or ``{item feature: [N]}`` with the item id, the item
            side features (and item popularity factors when served).
          k: how many to return (fewer if fewer candidates remain).
          exclude: item ids never to return (already seen, blocked).
          **request: the rest of `inputs`: ``value_weights`` (per-task weights
            overriding the defaults, missing tasks 0), ``not_interested`` (item ids
            the user marked "not interested": removed, with the candidates similar to
            them), ``item_age`` (``[N]`` ages for the freshness boost) and ``options``
            (`RerankOptions` or a mapping of its fields; defaults: off).
        """
        if not isinstance(candidates, Mapping):
            candidates = {self.schema.item_id.name: list(candidates)}
        items = np.asarray(candidates[self.schema.item_id.name])
        if len(items) == 0:
            return Ranking([], [])
        out = self.select_fn(**self.inputs(user, candidates, k, exclude, **request))
        out = {name: value.numpy() for name, value in out.items()}
        picks = [
            Selection(
                item_id=_py(out["item_ids"][i]),
                score=float(out["scores"][i]),
                probabilities={t: float(out[t][i]) for t in self.tasks},
                base_rank=int(out["base_ranks"][i]),
            )
            for i in range(len(out["item_ids"]))
        ]
        events = []
        for i, status in enumerate(out["status"]):
            if status in (SELECTED, BELOW_K):
                continue
            by = int(out["blocked_by"][i])
            events.append(
                RerankEvent(
                    _py(items[i]), STATUS_NAMES[status], _py(items[by]) if by >= 0 else None
                )
            )
        for rank, pick in enumerate(picks):
            if pick.base_rank is not None and pick.base_rank != rank:
                events.append(
                    RerankEvent(
                        pick.item_id,
                        "moved",
                        detail=f"from rank {pick.base_rank + 1} to {rank + 1}",
                    )
                )
        return Ranking(picks, events)

    def select(self, user, candidates, k: int = 10, exclude: Sequence = (), **kwargs):
        """`rank`'s picks only (same arguments)."""
        return self.rank(user, candidates, k, exclude, **kwargs).picks


def _tensor(values: np.ndarray, feature: Feature) -> tf.Tensor:
    if feature.dtype == "string":
        values = values.astype(object).astype(bytes)
    return tf.constant(values, feature.tf_dtype)


def read_candidates(value: str, schema: ImpressionSchema) -> dict[str, list]:
    """Candidates from ``"1,2,3"``, a file of one id per line, or a CSV with a header
    naming the item id and item side features."""
    item = schema.item_id
    if not is_file(value):
        if os.sep in value or is_url(value) or value.endswith((".csv", ".txt")):
            raise FileNotFoundError(f"{value}: candidates file not found")
        return {
            item.name: [item.parse_value(v.strip(), value) for v in value.split(",") if v.strip()]
        }
    lines = text_lines(value)  # any filesystem tf.io.gfile reaches
    first = next(lines, "")
    rows = itertools.chain([first], lines)
    if item.name in [c.strip() for c in first.split(",")]:
        reader = csv.DictReader(rows)
        cols: dict[str, list] = {name: [] for name in reader.fieldnames or []}
        for line, row in enumerate(reader, start=2):
            for name, v in row.items():
                where = f"{value}: line {line}, column '{name}'"
                cols[name].append(schema[name].parse_value(v, where) if name in schema else v)
        return cols
    return {
        item.name: [
            item.parse_value(line.strip(), f"{value}: line {i}")
            for i, line in enumerate(rows, start=1)
            if line.strip()
        ]
    }
