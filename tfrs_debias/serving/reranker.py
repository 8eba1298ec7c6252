"""`Reranker`: the third pass over one user's scored candidates (constraints, freshness,
diversity and category caps), written once in TensorFlow ops so that the exported
``select_top_k`` signature runs it in-graph (TF Serving does it in one call) and
`TopItemSelector` runs the same code.

Steps, in order, for ``N`` candidates with value-weighted scores ``s``:

1. **Freshness**: ``s' = s + freshness_weight * 2 ** (-age / freshness_half_life)``
   (``age`` from the ``item_age`` input, in any unit, the half-life in the same one;
   negative ages count as 0; no ages given or weight 0: no boost).
2. **Exclusions**: ids in ``exclude_item_ids`` (already seen, blocked: `EXCLUDED`); ids
   in ``not_interested_item_ids`` (`NOT_INTERESTED`); candidates whose similarity to a
   not-interested item is above ``not_interested_threshold``
   (`SIMILAR_TO_NOT_INTERESTED`).
3. **Greedy selection** of up to ``k`` items, as in maximal marginal relevance
   (Carbonell & Goldstein, 1998): each step picks, among the candidates still
   eligible, the one maximising ``λ · rel(i) − (1 − λ) · max_{j picked} sim(i, j)``,
   with ``rel`` the boosted score min-max scaled to [0, 1] over the candidates left
   after step 2 (so that λ trades like for like; the first pick has no penalty).
   After each pick, a candidate more similar than ``similarity_threshold`` to it
   becomes ineligible (`TOO_SIMILAR`: "always pick the next item dissimilar enough
   from those already picked"), and so does one whose category already holds
   ``category_cap`` picks (`CATEGORY_CAP`). ``λ = 1``, a threshold of 1 (or more) and a
   cap of 0 give the plain top-k by boosted score.

Similarity is the cosine of the model's learned item-id embeddings (0 for an id the
model never saw), or, with ``similarity=FEATURE``, 1 for candidates sharing the value
of an item feature and 0 otherwise (then the similarity to a not-interested item is
known only for not-interested items that are among the candidates).

Every candidate gets a status (`STATUS_NAMES`) and, when a pick or a not-interested
item removed it, the index of that item (``blocked_by``), so a ranking can be debugged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tfrs_debias.backend import tf

SELECTED, EXCLUDED, NOT_INTERESTED, SIMILAR_TO_NOT_INTERESTED = 0, 1, 2, 3
CATEGORY_CAP, TOO_SIMILAR, BELOW_K = 4, 5, 6
STATUS_NAMES = (
    "selected",
    "excluded",
    "not_interested",
    "similar_to_not_interested",
    "category_cap",
    "too_similar",
    "below_k",
)


@dataclasses.dataclass(frozen=True)
class RerankOptions:
    """Per-request knobs of the re-ranking (the ``select_top_k`` scalar inputs).

    Attributes:
      diversity_lambda: MMR trade-off λ in [0, 1]; 1 ranks by score alone.
      similarity_threshold: a candidate more similar than this to a picked item is
        skipped; 1 (cosine and equality are at most 1) turns the rule off.
      category_cap: at most this many picks per category; 0 means no cap.
      freshness_weight: weight of the freshness boost; 0 turns it off.
      freshness_half_life: age at which the boost halves (unit of ``item_age``), > 0.
      not_interested_threshold: candidates more similar than this to a not-interested
        item are removed.
    """

    diversity_lambda: float = 1.0
    similarity_threshold: float = 1.0
    category_cap: int = 0
    freshness_weight: float = 0.0
    freshness_half_life: float = 7.0
    not_interested_threshold: float = 0.9

    def __post_init__(self):
        if not 0.0 <= self.diversity_lambda <= 1.0:
            raise ValueError(f"diversity_lambda must be in [0, 1], got {self.diversity_lambda}")
        if self.category_cap < 0:
            raise ValueError(f"category_cap must be >= 0, got {self.category_cap}")
        if not self.freshness_half_life > 0:
            raise ValueError(f"freshness_half_life must be > 0, got {self.freshness_half_life}")
        for name in ("similarity_threshold", "freshness_weight", "not_interested_threshold"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float] | None) -> RerankOptions:
        """Options from ``{name: value}``; an unknown name is an error naming it."""
        given: dict = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"unknown re-ranking options {unknown}; known: {sorted(known)}")
        if "category_cap" in given:
            given["category_cap"] = int(given["category_cap"])
        return cls(**given)

    def tensors(self) -> dict[str, tf.Tensor]:
        """The options as the signature's scalar inputs."""
        return {
            f.name: tf.constant(
                getattr(self, f.name), tf.int32 if f.name == "category_cap" else tf.float32
            )
            for f in dataclasses.fields(self)
        }


OPTION_SPECS = {
    f.name: tf.TensorSpec([], tf.int32 if f.name == "category_cap" else tf.float32, name=f.name)
    for f in dataclasses.fields(RerankOptions)
}


class Reranker:
    """Re-ranks one user's scored candidates (see the module docstring).

    Args:
      similarity: ``"embedding"`` (cosine of the model's item-id embeddings) or the
        name of an item feature (equal values are similar).
      category_feature: the item feature that ``category_cap`` counts, or None
        (then a cap other than 0 is an error).
    """

    def __init__(self, similarity: str = "embedding", category_feature: str | None = None):
        self.similarity = similarity
        self.category_feature = category_feature

    def get_config(self) -> dict:
        return {"similarity": self.similarity, "category_feature": self.category_feature}

    # -- similarities -------------------------------------------------------------------
    def similarities(
        self, model, features: Mapping[str, tf.Tensor], not_interested: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """``(sim [N, N], not_interested_sim [N])`` for candidate ``features`` (an
        estimator's served features, ``[N]`` each): pairwise similarity of candidates
        and each one's largest similarity to a not-interested item (0 if none)."""
        ids = features[model.schema.item_id.name]
        if self.similarity == "embedding":
            cand, known = model.item_vectors(ids)
            other, other_known = model.item_vectors(not_interested)
            cand = tf.math.l2_normalize(cand, axis=-1) * tf.cast(known, tf.float32)[:, None]
            other = tf.math.l2_normalize(other, axis=-1) * tf.cast(other_known, tf.float32)[:, None]
            sim = tf.clip_by_value(tf.matmul(cand, cand, transpose_b=True), -1.0, 1.0)
            to_other = tf.clip_by_value(tf.matmul(cand, other, transpose_b=True), -1.0, 1.0)
            return sim, _row_max(to_other)
        values = features[self.similarity]
        sim = tf.cast(tf.equal(values[:, None], values[None, :]), tf.float32)
        is_ni = _member(ids, not_interested)
        to_other = tf.where(is_ni[None, :], sim, tf.zeros_like(sim))
        return sim, _row_max(to_other)

    def same_category(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor | None:
        if self.category_feature is None:
            return None
        values = features[self.category_feature]
        return tf.equal(values[:, None], values[None, :])

    # -- the re-ranking -----------------------------------------------------------------
    def rerank(
        self,
        scores: tf.Tensor,
        item_ids: tf.Tensor,
        sim: tf.Tensor,
        not_interested_sim: tf.Tensor,
        same_category: tf.Tensor | None,
        item_age: tf.Tensor,
        exclude_item_ids: tf.Tensor,
        not_interested_item_ids: tf.Tensor,
        k: tf.Tensor,
        options: Mapping[str, tf.Tensor],
    ) -> dict[str, tf.Tensor]:
        """Re-ranks ``N`` candidates; returns ``indices [m]`` (m <= k, best first),
        ``scores [m]`` (boosted scores), ``base_ranks [m]`` (0-based rank by the plain
        score among candidates left after the exclusions), ``status [N]`` and
        ``blocked_by [N]`` (index of the pick or not-interested candidate that removed
        it, else -1)."""
        scores = tf.cast(scores, tf.float32)
        n = tf.shape(scores)[0]
        lam = tf.cast(options["diversity_lambda"], tf.float32)
        threshold = tf.cast(options["similarity_threshold"], tf.float32)
        cap = tf.cast(options["category_cap"], tf.int32)
        weight = tf.cast(options["freshness_weight"], tf.float32)
        half_life = tf.cast(options["freshness_half_life"], tf.float32)
        checks = [
            tf.debugging.assert_greater_equal(lam, 0.0, message="diversity_lambda must be >= 0"),
            tf.debugging.assert_less_equal(lam, 1.0, message="diversity_lambda must be <= 1"),
            tf.debugging.assert_non_negative(cap, message="category_cap must be >= 0"),
            tf.debugging.assert_positive(half_life, message="freshness_half_life must be > 0"),
        ]
        if same_category is None:
            checks.append(
                tf.debugging.assert_equal(
                    cap, 0, message="category_cap needs an export with a category feature"
                )
            )
        num_ages = tf.shape(item_age)[0]
        checks.append(
            tf.debugging.Assert(
                tf.logical_or(tf.equal(num_ages, 0), tf.equal(num_ages, n)),
                ["item_age must be empty or have one value per candidate; got", num_ages, n],
            )
        )
        with tf.control_dependencies(checks):
            ages = tf.cond(
                tf.equal(num_ages, 0),
                lambda: tf.fill([n], float("inf")),
                lambda: tf.maximum(tf.cast(item_age, tf.float32), 0.0),
            )
        boosted = scores + weight * tf.pow(2.0, -ages / half_life)

        # Exclusions.
        status = tf.fill([n], BELOW_K)
        blocked_by = tf.fill([n], -1)
        ni_sim = tf.cast(not_interested_sim, tf.float32)
        similar = ni_sim > tf.cast(options["not_interested_threshold"], tf.float32)
        status = tf.where(similar, SIMILAR_TO_NOT_INTERESTED, status)
        status = tf.where(_member(item_ids, not_interested_item_ids), NOT_INTERESTED, status)
        status = tf.where(_member(item_ids, exclude_item_ids), EXCLUDED, status)
        eligible = tf.equal(status, BELOW_K)

        # Plain ranks among the candidates left (debugging: what moved).
        plain = tf.where(eligible, scores, float("-inf"))
        order = tf.argsort(plain, direction="DESCENDING", stable=True)
        plain_rank = tf.scatter_nd(order[:, None], tf.range(n), [n])

        low = tf.reduce_min(tf.where(eligible, boosted, float("inf")))
        high = tf.reduce_max(tf.where(eligible, boosted, float("-inf")))
        spread = high - low
        rel = tf.where(spread > 0, (boosted - low) / tf.where(spread > 0, spread, 1.0), 0.0)
        k = tf.clip_by_value(tf.cast(k, tf.int32), 0, n)

        no_cap = tf.equal(cap, 0) if same_category is not None else tf.constant(True)
        plain_top_k = tf.logical_and(tf.logical_and(tf.equal(lam, 1.0), threshold >= 1.0), no_cap)

        def top_k():
            left = tf.where(eligible, boosted, float("-inf"))
            m = tf.minimum(k, tf.reduce_sum(tf.cast(eligible, tf.int32)))
            picked = tf.math.top_k(left, k=m).indices
            return picked, status, blocked_by

        def greedy():
            return self._greedy(
                rel, sim, same_category, eligible, status, blocked_by, k, lam, threshold, cap
            )

        picked, status, blocked_by = tf.cond(plain_top_k, top_k, greedy)
        status = tf.tensor_scatter_nd_update(
            status, picked[:, None], tf.fill(tf.shape(picked), SELECTED)
        )
        return {
            "indices": picked,
            "scores": tf.gather(boosted, picked),
            "base_ranks": tf.gather(plain_rank, picked),
            "status": status,
            "blocked_by": blocked_by,
        }

    @staticmethod
    def _greedy(rel, sim, same_category, eligible, status, blocked_by, k, lam, threshold, cap):
        n = tf.shape(rel)[0]
        sim = tf.cast(sim, tf.float32)
        capped = same_category is not None
        same = tf.cast(same_category, tf.int32) if capped else None

        def cond(step, picks, available, max_sim, counts, status, blocked_by):
            return tf.logical_and(step < k, tf.reduce_any(available))

        def body(step, picks, available, max_sim, counts, status, blocked_by):
            penalty = tf.where(step > 0, max_sim, tf.zeros_like(max_sim))
            value = tf.where(available, lam * rel - (1.0 - lam) * penalty, float("-inf"))
            j = tf.cast(tf.argmax(value), tf.int32)
            picks = tf.tensor_scatter_nd_update(picks, [[step]], [j])
            available = tf.tensor_scatter_nd_update(available, [[j]], [False])
            column = sim[:, j]
            max_sim = tf.maximum(max_sim, column)
            blocked = available & (column > threshold)
            status = tf.where(blocked, TOO_SIMILAR, status)
            blocked_by = tf.where(blocked, j, blocked_by)
            available = available & ~blocked
            if capped:
                counts = counts + same[:, j]
                full = available & (cap > 0) & (counts >= cap)
                status = tf.where(full, CATEGORY_CAP, status)
                blocked_by = tf.where(full, j, blocked_by)
                available = available & ~full
            return step + 1, picks, available, max_sim, counts, status, blocked_by

        init = (
            tf.constant(0),
            tf.zeros([n], tf.int32),
            eligible,
            tf.fill([n], float("-inf")),
            tf.zeros([n], tf.int32),
            status,
            blocked_by,
        )
        step, picks, _, _, _, status, blocked_by = tf.while_loop(cond, body, init)
        return picks[:step], status, blocked_by


def _member(values: tf.Tensor, of: tf.Tensor) -> tf.Tensor:
    """``[N]`` True where ``values[i]`` is in ``of``."""
    return tf.reduce_any(tf.equal(values[:, None], tf.cast(of, values.dtype)[None, :]), axis=1)


def _row_max(matrix: tf.Tensor) -> tf.Tensor:
    """Row maxima of ``[N, M]``, 0 when ``M`` is 0."""
    return tf.reduce_max(tf.concat([matrix, tf.zeros_like(matrix[:, :1])], axis=1), axis=1)
