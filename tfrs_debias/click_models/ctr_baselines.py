"""Simple click-through-rate baselines of the click-model literature (Chuklin et al.,
*Click Models for Web Search*, §3.1): the click probability of an impression is the
training click rate of its rank (per context), or of its document (of its
(query, document) pair, falling back to the document, then the global rate)."""

from __future__ import annotations

import dataclasses

import numpy as np

from tfrs_debias.click_models.click_log import ClickLog


@dataclasses.dataclass
class RankCTR:
    """``P(click) = CTR(rank, context)`` from training."""

    def fit(self, log: ClickLog) -> RankCTR:
        cell = log.cell_index()
        n = np.bincount(cell, minlength=log.num_cells)
        c = np.bincount(cell, log.clicks, minlength=log.num_cells)
        self.global_rate = float(log.clicks.mean()) if len(log) else 0.5
        self.rate = np.where(n > 0, c / np.maximum(n, 1), self.global_rate).reshape(
            log.num_ranks, log.num_contexts
        )
        self.contexts = log.contexts
        return self

    def predict(self, log: ClickLog) -> np.ndarray:
        return np.clip(log.cell_values(self.rate, self.contexts), 1e-6, 1 - 1e-6)


@dataclasses.dataclass
class DocumentCTR:
    """``P(click) = CTR(query, doc)``, else ``CTR(doc)``, else the global rate; each
    smoothed with ``prior_strength`` pseudo-impressions at the global rate."""

    prior_strength: float = 1.0

    def fit(self, log: ClickLog) -> DocumentCTR:
        self.global_rate = float(log.clicks.mean()) if len(log) else 0.5
        k = self.prior_strength
        pair, pairs = log.pair_index()
        n = np.bincount(pair, minlength=len(pairs))
        c = np.bincount(pair, log.clicks, minlength=len(pairs))
        rate = (c + k * self.global_rate) / (n + k)
        self.pair_rate = dict(zip(pairs, rate.tolist(), strict=True))
        docs, inverse = np.unique(log.docs, return_inverse=True)
        n = np.bincount(inverse.reshape(-1), minlength=len(docs))
        c = np.bincount(inverse.reshape(-1), log.clicks, minlength=len(docs))
        rate = (c + k * self.global_rate) / (n + k)
        self.doc_rate = dict(zip(docs.tolist(), rate.tolist(), strict=True))
        return self

    def predict(self, log: ClickLog) -> np.ndarray:
        p = [
            self.pair_rate.get(key, self.doc_rate.get(key[1], self.global_rate))
            for key in log.pair_keys()
        ]
        return np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
