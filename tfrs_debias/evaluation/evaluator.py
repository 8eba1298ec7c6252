"""`Evaluator`: how well a model's served scores rank by true relevance, and what its
bias part learned, from an export (SavedModel) or an in-memory estimator.

On logged data: per-task AUC and log-loss of the full (``biased``) probabilities, and
when the logs carry a ``propensity``, self-normalised inverse-propensity (SNIPS)
weighted AUC and log-loss of the served (debiased) probabilities.

With a truth file: NDCG@k of the served scores against true relevance on the truth's
held-out candidates, overall and by user-activity bucket (new / casual / power, by
training impressions) and item-popularity bucket (head / torso / tail: candidates are
re-ranked within the bucket); and the examination curve the ``biased`` path learned
per device, relative to position 0, against the true one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.data.io.reader import make_dataset
from tfrs_debias.data.io.truth import GroundTruth
from tfrs_debias.data.io.validation import located_errors
from tfrs_debias.evaluation.group_fairness import logged_fairness, truth_fairness
from tfrs_debias.evaluation.rerank_tradeoff import rerank_tradeoff
from tfrs_debias.metrics.buckets import ITEM_BUCKETS, USER_BUCKETS, item_bucket, user_bucket
from tfrs_debias.metrics.examination import examination_probabilities, rank_and_context
from tfrs_debias.metrics.ground_truth import candidate_features, score_candidates
from tfrs_debias.metrics.ranking import ndcg_at_k
from tfrs_debias.schema import ImpressionSchema

ProbFn = Callable[[dict[str, tf.Tensor]], np.ndarray]


@dataclasses.dataclass
class Scorer:
    """A model as two probability functions ``features -> [batch, num_tasks]``."""

    tasks: tuple[str, ...]
    schema: ImpressionSchema
    debiased: ProbFn
    biased: ProbFn | None
    has_bias_part: bool = True
    selector: Callable[[], Any] | None = None  # -> TopItemSelector (the third pass)

    @classmethod
    def from_estimator(cls, model) -> Scorer:
        from tfrs_debias.serving.top_item_selector import TopItemSelector

        return cls(
            tuple(model.task_names),
            model.schema,
            lambda f: model.debiased_probabilities(f).numpy(),
            lambda f: model.task_values(model(f)).numpy(),
            model.has_bias_part,
            lambda: TopItemSelector.from_estimator(model),
        )

    @classmethod
    def from_saved_model(cls, path: str) -> Scorer:
        from tfrs_debias.serving.loaded_export import LoadedExport
        from tfrs_debias.serving.top_item_selector import TopItemSelector

        export = LoadedExport(path)
        return cls(
            export.tasks,
            export.schema,
            export.task_probabilities("serving_default"),
            export.task_probabilities("biased") if "biased" in export.signatures else None,
            export.has_bias_part,
            lambda: TopItemSelector.from_export(export),
        )


class Evaluator:
    """Evaluates scorers against one dataset directory (logs, schema, truth).

    Args:
      truth: the dataset's `GroundTruth` (None for plain logs).
      ks: NDCG cut-offs. Defaults to (5, 10).
      user_thresholds: training impressions separating new/casual/power users.
      item_quantiles: quantiles separating tail/torso/head items.
      tradeoff_users: test users of the diversity trade-off sweep (0: no sweep).
      tradeoff_lambdas: the MMR λ values it sweeps.
    """

    def __init__(
        self,
        truth: GroundTruth | None = None,
        ks: Sequence[int] = (5, 10),
        user_thresholds: Sequence[int] = (10, 100),
        item_quantiles: Sequence[float] = (0.5, 0.9),
        tradeoff_users: int = 200,
        tradeoff_lambdas: Sequence[float] = (1.0, 0.8, 0.6, 0.4, 0.2),
    ):
        self.truth = truth
        self.ks = tuple(ks)
        self.user_thresholds = tuple(user_thresholds)
        self.item_quantiles = tuple(item_quantiles)
        self.tradeoff_users = int(tradeoff_users)
        self.tradeoff_lambdas = tuple(float(x) for x in tradeoff_lambdas)

    # -- against the truth --------------------------------------------------------
    def _required_truth(self) -> GroundTruth:
        if self.truth is None:
            raise ValueError("this evaluation needs a truth file (simulate/movielens/ratings)")
        return self.truth

    def truth_scores(self, scorer: Scorer) -> np.ndarray:
        """``[N, C, num_tasks]`` served probabilities of the truth's candidates."""
        return score_candidates(scorer.debiased, self._required_truth(), scorer.schema)

    def ranking(self, scorer: Scorer, scores: np.ndarray | None = None) -> dict[str, Any]:
        truth = self._required_truth()
        scores = self.truth_scores(scorer) if scores is None else scores
        users = user_bucket(truth.user_train_impressions, self.user_thresholds)
        items = item_bucket(truth.candidate_train_impressions, self.item_quantiles, truth.mask)
        out: dict[str, Any] = {
            "ndcg": {},
            "ndcg_by_user_bucket": {},
            "ndcg_by_item_bucket": {},
            "users_per_bucket": {b: int((users == b).sum()) for b in USER_BUCKETS},
            "ndcg_per_user": {},
        }
        for i, task in enumerate(scorer.tasks):
            if task not in truth.relevance:
                continue
            rel, s = truth.relevance[task], scores[..., i]
            per_user = {k: ndcg_at_k(s, rel, k, truth.mask) for k in self.ks}
            out["ndcg"][task] = {f"@{k}": _mean(v) for k, v in per_user.items()}
            out["ndcg_per_user"][task] = {
                f"@{k}": [None if np.isnan(x) else float(x) for x in v] for k, v in per_user.items()
            }
            out["ndcg_by_user_bucket"][task] = {
                b: {f"@{k}": _mean(v[users == b]) for k, v in per_user.items()}
                for b in USER_BUCKETS
            }
            out["ndcg_by_item_bucket"][task] = {
                b: {
                    f"@{k}": _mean(ndcg_at_k(s, rel, k, truth.mask & (items == b))) for k in self.ks
                }
                for b in ITEM_BUCKETS
            }
        # Padded candidates (mask False) must sort last: -inf score, then descending.
        ranked = np.where(truth.mask, scores[..., 0], -np.inf)
        top = np.argsort(-ranked, axis=1, kind="stable")[:, :10]
        first = scorer.tasks[0]
        ideal = np.argsort(-np.nan_to_num(truth.relevance[first], nan=-1), axis=1)[:, :10]
        out["head_share_top10"] = float(np.mean(np.take_along_axis(items, top, 1) == "head"))
        out["head_share_top10_truth"] = float(
            np.mean(np.take_along_axis(items, ideal, 1) == "head")
        )
        return out

    def fairness(
        self, scorer: Scorer, scores: np.ndarray | None = None, k: int | None = None
    ) -> dict[str, Any] | None:
        """`truth_fairness` of ``scorer`` (error per user group, exposure per item
        group) with this evaluator's buckets."""
        scores = self.truth_scores(scorer) if scores is None else scores
        return truth_fairness(
            self._required_truth(),
            scorer.tasks,
            scorer.schema,
            scores,
            k or max(self.ks),
            self.user_thresholds,
            self.item_quantiles,
        )

    def tradeoff(
        self,
        scorer: Scorer,
        k: int = 10,
        seed: int = 0,
        settings: Sequence[Mapping[str, float]] | None = None,
        item_age: np.ndarray | None = None,
    ) -> dict[str, Any] | None:
        """`rerank_tradeoff` of ``scorer`` 's ``select_top_k`` over ``tradeoff_users``
        test users; ``settings`` default to each MMR λ of ``tradeoff_lambdas``."""
        if self.tradeoff_users <= 0 or scorer.selector is None:
            return None
        if settings is None:
            settings = [{"diversity_lambda": lam} for lam in self.tradeoff_lambdas]
        return rerank_tradeoff(
            self._required_truth(),
            scorer.selector(),
            scorer.tasks,
            settings,
            self.tradeoff_users,
            k,
            seed,
            item_age,
            self.item_quantiles,
        )

    def examination(self, scorer: Scorer, max_pairs: int = 2000, seed: int = 0) -> dict | None:
        """Learned examination per device relative to position 0 (ratio of mean full
        click probabilities over sampled truth pairs), against the true curve."""
        truth, schema = self._required_truth(), scorer.schema
        if scorer.biased is None or not scorer.has_bias_part or truth.examination is None:
            return None
        position, device = rank_and_context(schema)
        if position is None or device is None:
            return None
        feats = candidate_features(truth, schema)
        valid = np.flatnonzero(truth.mask.reshape(-1))
        pick = np.random.default_rng(seed).choice(valid, min(max_pairs, valid.size), replace=False)
        pairs = {k: v[pick] for k, v in feats.items()}
        probs = examination_probabilities(
            scorer.biased, pairs, position, device, truth.devices, truth.examination.shape[1]
        )
        means = probs.mean(axis=2)  # [devices, positions]
        learned = means / means[:, :1]
        true = truth.examination / truth.examination[:, :1]
        error = np.abs(learned - true) / true
        return {
            "devices": list(truth.devices),
            "learned": learned.tolist(),
            "true": true.tolist(),
            "relative_error": error.tolist(),
            "max_error": float(error.max()),
            "mean_error": float(error.mean()),
        }

    # -- on logged data --------------------------------------------------------------
    def logged(
        self,
        scorer: Scorer,
        files: str | Sequence[str],
        data_schema: ImpressionSchema,
        batch_size: int = 16384,
    ) -> dict[str, Any]:
        """AUC and log-loss of the full (training-path) probabilities per task, the AUC of
        the served probabilities (``served_auc``: what production ranks by; on a random
        test the one to read), and SNIPS-weighted AUC and log-loss of the served
        probabilities when the logs carry a propensity; for real-valued tasks, the RMSE
        of the full and the served outputs (``rmse``, ``served_rmse``)."""
        prop = data_schema.propensity
        real = set(scorer.schema.real_valued_tasks)
        metrics: dict[str, dict] = {}
        for t in scorer.tasks:
            if t in real:  # real-valued labels: root mean squared error of the outputs
                metrics[t] = {
                    "rmse": keras.metrics.RootMeanSquaredError(),
                    "served_rmse": keras.metrics.RootMeanSquaredError(),
                }
                continue
            metrics[t] = {
                "auc": keras.metrics.AUC(num_thresholds=2000),
                "logloss": keras.metrics.BinaryCrossentropy(),
                "served_auc": keras.metrics.AUC(num_thresholds=2000),
            }
            if prop is not None:
                metrics[t]["snips_auc"] = keras.metrics.AUC(num_thresholds=2000)
                metrics[t]["snips_logloss"] = keras.metrics.BinaryCrossentropy()
        weight_sum, rows = 0.0, 0
        user = data_schema.user_id.name
        group_names = [f.name for f in data_schema.user_features if f.name in scorer.schema]
        columns: dict[str, list[np.ndarray]] = {name: [] for name in [user, *group_names]}
        losses: list[np.ndarray] = []
        with located_errors(files, data_schema):
            for batch in make_dataset(files, data_schema, batch_size, shuffle=False):
                rows += int(next(iter(batch.values())).shape[0])
                weight, served = self._update_logged(scorer, batch, metrics, prop)
                weight_sum += weight
                for name, values in columns.items():
                    values.append(batch[name].numpy())
                y = batch[scorer.tasks[0]].numpy()
                if scorer.tasks[0] in real:
                    losses.append((served[:, 0] - y) ** 2)
                else:
                    p = np.clip(served[:, 0], 1e-7, 1 - 1e-7)
                    losses.append(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
        if not rows:
            raise ValueError(f"no records to evaluate in {files}")
        result = {t: {k: float(m.result()) for k, m in ms.items()} for t, ms in metrics.items()}
        return {
            "rows": rows,
            "tasks": result,
            "ips_weight_mean": weight_sum / max(rows, 1) if prop is not None else None,
            "fairness": logged_fairness(
                scorer.tasks[0],
                np.concatenate(losses),
                np.concatenate(columns[user]),
                {name: np.concatenate(columns[name]) for name in group_names},
                "served squared error per user on the logged rows"
                if scorer.tasks[0] in real
                else "served log-loss per user on the logged rows",
            ),
        }

    @staticmethod
    def _update_logged(
        scorer: Scorer, batch: dict, metrics: dict, prop
    ) -> tuple[float, np.ndarray]:
        """Adds one batch to the `logged` metrics; returns its sum of IPS weights and
        the served probabilities."""
        served = scorer.debiased(batch)
        full = scorer.biased(batch) if scorer.biased is not None else served
        w = 1.0 / batch[prop.name] if prop is not None else None
        for i, t in enumerate(scorer.tasks):
            y = tf.cast(batch[t], tf.float32)
            if "rmse" in metrics[t]:
                metrics[t]["rmse"].update_state(y, full[:, i])
                metrics[t]["served_rmse"].update_state(y, served[:, i])
                continue
            metrics[t]["auc"].update_state(y, full[:, i])
            metrics[t]["served_auc"].update_state(y, served[:, i])
            metrics[t]["logloss"].update_state(y[:, None], full[:, i : i + 1])
            if w is not None:
                metrics[t]["snips_auc"].update_state(y, served[:, i], sample_weight=w)
                metrics[t]["snips_logloss"].update_state(
                    y[:, None], served[:, i : i + 1], sample_weight=w
                )
        return (float(tf.reduce_sum(w)) if w is not None else 0.0), np.asarray(served)

    def evaluate(
        self,
        scorer: Scorer,
        log_files: str | Sequence[str] | None = None,
        data_schema: ImpressionSchema | None = None,
        click_baselines=None,
    ) -> dict[str, Any]:
        """Everything that applies: ranking and examination against the truth (if any),
        metrics on ``log_files`` (if given), and without a truth, the comparison with
        ``click_baselines`` (a `ClickModelBaselines` of the same logs) when given."""
        out: dict[str, Any] = {"tasks": list(scorer.tasks)}
        if self.truth is not None:
            scores = self.truth_scores(scorer)
            out["ranking"] = self.ranking(scorer, scores)
            out["fairness"] = self.fairness(scorer, scores)
            out["tradeoff"] = self.tradeoff(scorer)
            out["examination"] = self.examination(scorer)
        if log_files:
            out["logged"] = self.logged(scorer, log_files, data_schema or scorer.schema)
            if self.truth is None and click_baselines is not None:
                out["click_models"] = click_baselines.compare(scorer)
        return out


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None
