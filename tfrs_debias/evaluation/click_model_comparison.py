"""`ClickModelBaselines`: on logs without ground truth, how well a model's full (biased)
click probabilities explain held-out clicks next to the click-model baselines (PBM by
EM, rank CTR, document CTR), and the examination curve it learned per bias-feature value
beside PBM's, with bootstrap intervals.

The logs are read and the baselines fitted once per dataset (per task); each model is
then compared against them with `ClickModelBaselines.compare`. The query of the
click-model literature is the user id (a search log converted with ``tfrs-debias
convert`` maps the query to ``user_id``); the rank and the context are the bias
features `rank_and_context` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrs_debias.click_models import (
    ClickLog,
    DocumentCTR,
    PositionBasedModel,
    RankCTR,
    log_likelihood,
    perplexity,
    perplexity_by_rank,
)
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.metrics.examination import examination_probabilities, rank_and_context
from tfrs_debias.metrics.ground_truth import apply_batched
from tfrs_debias.schema import ImpressionSchema


class ClickModelBaselines:
    """The click-model baselines of one dataset.

    Args:
      train_files: logs the baselines are fitted on (the dataset's ``train`` split).
      test_files: held-out logs every model and baseline is scored on.
      schema: the logs' schema.
    """

    def __init__(
        self, train_files: Sequence[str], test_files: Sequence[str], schema: ImpressionSchema
    ):
        self.train_files, self.test_files, self.schema = train_files, test_files, schema
        self.rank, self.context = rank_and_context(schema)
        self._columns: tuple[dict, dict] | None = None
        self._fitted: dict[str, dict[str, Any] | None] = {}

    def _read(self) -> tuple[dict, dict]:
        if self._columns is None:
            schema = self.schema
            read = ImpressionSchema(
                schema.by_role(
                    "user_id", "item_id", "user_feature", "item_feature", "bias", "popularity"
                )
                + schema.by_role("label")
            )
            self._columns = (
                read_columns(self.train_files, read),
                read_columns(self.test_files, read),
            )
        return self._columns

    def fitted(self, task: str) -> dict[str, Any] | None:
        """``{"train_log", "test_log", "models", "probs"}`` for ``task``, fitted on first
        use (None when the logs have no integer bias feature, no such label or no rows)."""
        if task in self._fitted:
            return self._fitted[task]
        self._fitted[task] = None
        if self.rank is None or task not in self.schema.tasks:
            return None
        train_cols, test_cols = self._read()
        if not train_cols or not test_cols:
            return None
        names: dict[str, Any] = dict(
            query=self.schema.user_id.name, doc=self.schema.item_id.name, rank=self.rank.name
        )
        ctx = self.context.name if self.context is not None else None
        train_log = ClickLog.from_columns(train_cols, **names, click=task, context=ctx)
        test_log = ClickLog.from_columns(
            test_cols,
            **names,
            click=task,
            context=ctx,
            contexts=train_log.contexts,
            num_ranks=train_log.num_ranks,
        )
        models: dict[str, Any] = {
            "pbm": PositionBasedModel().fit(train_log),
            "rank_ctr": RankCTR().fit(train_log),
            "doc_ctr": DocumentCTR().fit(train_log),
        }
        self._fitted[task] = {
            "train_log": train_log,
            "test_log": test_log,
            "test_columns": test_cols,
            "models": models,
            "probs": {name: m.predict(test_log) for name, m in models.items()},
        }
        return self._fitted[task]

    def compare(
        self,
        scorer,
        task: str | None = None,
        max_pairs: int = 1000,
        num_bootstrap: int = 200,
        seed: int = 0,
    ) -> dict[str, Any] | None:
        """Perplexity / log-likelihood on the test logs of the scorer's full probabilities
        and of the baselines; the scorer's learned examination per context value vs
        PBM's. None when there is nothing to compare."""
        task = task or scorer.tasks[0]
        fit = self.fitted(task)
        if fit is None or scorer.biased is None or task not in scorer.tasks:
            return None
        train_log, test_log = fit["train_log"], fit["test_log"]
        index = scorer.tasks.index(task)
        probs = dict(fit["probs"])
        probs["model"] = apply_batched(scorer.biased, fit["test_columns"])[:, index]
        ranks = np.minimum(test_log.ranks, train_log.num_ranks - 1)
        ppl = {n: perplexity(test_log.clicks, p, ranks) for n, p in probs.items()}
        return {
            "task": task,
            "impressions": len(test_log),
            "perplexity": ppl,
            "perplexity_by_rank": {
                n: perplexity_by_rank(test_log.clicks, p, ranks).tolist() for n, p in probs.items()
            },
            "log_likelihood": {n: log_likelihood(test_log.clicks, p) for n, p in probs.items()},
            # A model without a bias part has no examination curve to show (it is flat).
            "examination": (
                self._learned_curves(scorer, fit, index, max_pairs, num_bootstrap, seed)
                if scorer.has_bias_part
                else None
            ),
            "summary": [
                "click perplexity (lower is better): "
                + ", ".join(f"{n} {v:.4f}" for n, v in sorted(ppl.items(), key=lambda kv: kv[1]))
            ],
        }

    def _learned_curves(self, scorer, fit, index, max_pairs, num_boot, seed) -> dict:
        assert self.rank is not None  # (curves are drawn only over a rank feature)
        rng = np.random.default_rng(seed)
        cols, log = fit["test_columns"], fit["train_log"]
        n = len(next(iter(cols.values())))
        pick = rng.choice(n, min(max_pairs, n), replace=False)
        pairs = {k: v[pick] for k, v in cols.items()}
        probs = examination_probabilities(
            scorer.biased, pairs, self.rank, self.context, log.contexts, log.num_ranks, index
        )  # [contexts, ranks, pairs]
        learned = probs.mean(axis=2) / probs[:, :1].mean(axis=2)
        boot = rng.integers(0, pick.size, size=(num_boot, pick.size))
        resampled = probs[:, :, boot].mean(axis=3)  # [contexts, ranks, boot]
        low, high = np.quantile(resampled / resampled[:, :1], [0.025, 0.975], axis=2)
        pbm_curve = fit["models"]["pbm"].examination()
        error = np.abs(learned - pbm_curve) / np.maximum(pbm_curve, 1e-9)
        return {
            "contexts": [str(c) for c in log.contexts],
            "learned": learned.tolist(),
            "learned_low": low.tolist(),
            "learned_high": high.tolist(),
            "pbm": pbm_curve.tolist(),
            "relative_error_vs_pbm": error.tolist(),
            "mean_error_vs_pbm": float(error.mean()),
            "max_error_vs_pbm": float(error.max()),
        }
