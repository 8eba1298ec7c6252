"""`ClickLog`: impressions as the click-model literature sees them — query (the user or
request context), document, rank, context (a bias-feature value such as device), click."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass
class ClickLog:
    """Columns of equal length ``[impressions]``.

    Attributes:
      queries: the query (or user) id of each impression.
      docs: the document (item) id.
      ranks: 0-based rank (position).
      clicks: 0/1.
      context: the value of a categorical bias feature (device, surface) or None.
      contexts: the distinct context values, in a fixed order (set by `from_columns`).
    """

    queries: np.ndarray
    docs: np.ndarray
    ranks: np.ndarray
    clicks: np.ndarray
    context: np.ndarray | None = None
    contexts: tuple = ("all",)
    num_ranks: int = 0

    @classmethod
    def from_columns(
        cls,
        columns: dict[str, np.ndarray],
        query: str,
        doc: str,
        rank: str,
        click: str,
        context: str | None = None,
        contexts: Sequence | None = None,
        num_ranks: int | None = None,
    ) -> ClickLog:
        ctx = None if context is None else np.asarray(columns[context])
        if ctx is not None and ctx.dtype.kind in "SO":
            ctx = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in ctx])
        ranks = np.asarray(columns[rank], np.int64)
        known = (
            tuple(contexts)
            if contexts is not None
            else (tuple(sorted(set(ctx.tolist()))) if ctx is not None else ("all",))
        )
        return cls(
            queries=np.asarray(columns[query]),
            docs=np.asarray(columns[doc]),
            ranks=ranks,
            clicks=np.asarray(columns[click], np.int64),
            context=ctx,
            contexts=known,
            num_ranks=int(num_ranks or (ranks.max() + 1 if ranks.size else 1)),
        )

    def __len__(self) -> int:
        return int(self.clicks.size)

    @property
    def num_contexts(self) -> int:
        return len(self.contexts)

    @property
    def num_cells(self) -> int:
        return self.num_ranks * self.num_contexts

    def context_codes(self, contexts: Sequence | None = None) -> np.ndarray:
        """``[impressions]`` index of each context in ``contexts`` (-1 if absent)."""
        contexts = tuple(contexts or self.contexts)
        if self.context is None:
            return np.zeros(len(self), np.int64)
        lookup = {c: i for i, c in enumerate(contexts)}
        return np.array([lookup.get(c, -1) for c in self.context.tolist()], np.int64)

    def cell_index(self) -> np.ndarray:
        """``[impressions]`` index of the (rank, context) cell, ``rank * C + context``."""
        ranks = np.minimum(self.ranks, self.num_ranks - 1)
        return ranks * self.num_contexts + np.maximum(self.context_codes(), 0)

    def cell_values(self, table: np.ndarray, contexts: Sequence) -> np.ndarray:
        """``[impressions]`` entries of a fitted ``[num_ranks, len(contexts)]`` table at
        each impression's (rank, context); ranks past the table use its last rank, and a
        context the table was not fitted on gets the mean over contexts."""
        ranks = np.minimum(self.ranks, table.shape[0] - 1)
        ctx = self.context_codes(contexts)
        return np.where(ctx >= 0, table[ranks, np.maximum(ctx, 0)], table[ranks].mean(1))

    def pair_keys(self) -> list:
        """``[(query, doc)]`` of each impression, as hashable Python values."""
        return list(zip(self.queries.tolist(), self.docs.tolist(), strict=True))

    def pair_index(self) -> tuple[np.ndarray, list]:
        """``([impressions] pair index, distinct (query, doc) pairs)``."""
        _, q = np.unique(self.queries, return_inverse=True)
        _, d = np.unique(self.docs, return_inverse=True)
        key = q.reshape(-1).astype(np.int64) * (int(d.max()) + 1 if d.size else 1) + d.reshape(-1)
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        keys = self.pair_keys()
        return inverse.reshape(-1), [keys[i] for i in first]
