"""`EstimatorConfig`: every hyper-parameter of the estimators, as a frozen dataclass that
round-trips through JSON (``tfrs-debias train --config``, keras-tuner's best config)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tfrs_debias.models.registry import REGISTRY

COMBINES = ("multiply", "add")
PROPENSITY_WEIGHTINGS = ("none", "ips", "snips", "dr")
#: Where doubly robust learning draws the unobserved pairs it imputes (`dr_pairs`).
DR_PAIRS = ("batch", "uniform")


def doubly_robust_fits(schema) -> bool:
    """Whether ``propensity_weighting="dr"`` can train on ``schema``: ratings data, with
    no bias or popularity features (on click logs the bias tower is the correction)."""
    return not (schema.bias_features or schema.popularity_features)


#: `tfrs_debias.training.build_optimizer`'s names (a test keeps the two in step).
OPTIMIZERS = ("lazy_adam", "adam")
#: `tfrs_debias.training.build_optimizer`'s learning-rate schedules.
LEARNING_RATE_SCHEDULES = ("cosine", "constant")
#: The per-task loss names: the pointwise ones (``bce`` for binary labels; ``mse`` and
#: YouTube's ``weighted_logistic`` for real-valued ones such as watch time) and the keys
#: of `tfrs_debias.losses.LIST_LOSSES` (named here, so this module needs no TensorFlow;
#: a test keeps the two in step).
LIST_LOSS_NAMES = ("softmax", "pairwise_logistic")
REGRESSION_LOSSES = ("mse", "weighted_logistic")
TASK_LOSSES = ("bce", *LIST_LOSS_NAMES, *REGRESSION_LOSSES)


@dataclasses.dataclass(frozen=True)
class EstimatorConfig:
    """Hyper-parameters; fields that a model does not use are ignored by it.

    Attributes:
      model: a name in the estimator registry (`registry.MODEL_NAMES`).
      tasks: label names, the order of the logits. Defaults to the schema's tasks.
      task_weights: loss weight per task. Defaults to 1 each.
      value_weights: weight per task of the served ``score = Σ_t w_t · p_t``.
        Defaults to 1 each.
      embedding_dim: id and side-feature embedding width.
      hidden_units: the relevance (user x item) tower's hidden widths.
      num_experts: MMoE mixture width E; 0 means one shared tower.
      expert_units: hidden widths of each MMoE expert.
      dropout: dropout in the relevance tower.
      min_id_count: ids seen fewer times in training share the unknown embedding.
      bias_embedding_dim / bias_hidden_units: the shallow bias tower.
      bias_combine: ``"multiply"`` (PAL: ``p = σ(s)·σ(r)``, the position-based click
        model) or ``"add"`` (YouTube: ``logit = r + s``).
      bias_feature_dropout: probability of dropping each bias feature (training).
        Defaults to 0: serving never reads a bias feature, and dropping it in training
        lets the relevance tower take over position. On the real search click log
        (PyClick's Yandex sample, bias_logit_scale 1, PBM at 200 EM iterations) 0.1 left
        the learned curve 30% / 51% (mean / max) off PBM's, 0 left it 6% / 9%; on the
        default simulator 0 also ranks better
        (docs/real_logs.md).
      bias_logit_scale: the bias tower's logits are its head's output times this, so
        under Adam they move this many times as fast per step as the relevance
        tower's. Position is identified only by documents shown at several ranks, a
        weak signal the per-document relevance can absorb first; training then creeps
        along the valley that trades the curve against relevance. At 1 on the real
        search click log the curve was still 6% / 9% (mean / max) off the converged
        PBM's after 17 epochs; at 5 it is 2.4% / 3.6% with held-out perplexity below
        PBM's; on the search preset 30% / 36% off the truth at 1, 8% / 17% at 5,
        6% / 10% at 10; on the default simulator NDCG@10 0.748 at 1, 0.754 at 5,
        0.753 at 10 (curve max error 10.7%, 11.7%, 12.2%) (docs/real_logs.md).
      observation_dropout: probability of switching the bias logit off (training).
      gradient_reversal: strength α of the adversary's reversed gradient; 0 = off.
      adversary_weight: weight of the adversary's loss.
      gate_units: hidden widths of the mixture-of-logits gate (factorized models).
      component_units: hidden widths of the user-only and item-only towers.
      anchor_weights: BCE weights on the user-only, item-only and bias components
        (anchored factorized). Defaults to (0.1, 0.1, 0.0): on the default simulator
        (5 epochs) NDCG@10 was 0.559 with (1, 1, 1), 0.656 with (1, 1, 0) and 0.691
        with (0.1, 0.1, 0). Under PAL, σ(s) is the examination probability; anchoring
        s alone to clicks pulls it towards the click rate instead. A bias anchor fits
        ``bias_combine="add"`` better.
      item_marginal_alpha: fraction α of the item-only marginal served with the
        interaction component (factorized models).
      learning_rate: Adam learning rate used by `train` unless it is given one.
      learning_rate_schedule: ``"cosine"`` (default): the rate decays to 0 along a
        cosine over the run's planned steps (epochs x steps per epoch), so the last
        epochs settle instead of wandering; ``"constant"`` holds it. On the real search
        click log (PyClick's Yandex sample) at a constant rate the learned examination
        curve moved by up to 10% between consecutive late epochs (rank 3: 0.58 / 0.64 /
        0.58) and early stopping kept whichever epoch the flat validation loss happened
        to favour; with the cosine the last epochs agree to 0.3% and the curve and the
        held-out perplexity beat PBM's reference (docs/real_logs.md).
      optimizer: ``"lazy_adam"`` (default: Adam whose sparse embedding-row updates
        touch only the rows in the batch, so a step costs the same at 10k and 1M ids)
        or ``"adam"`` (Keras's Adam: every row's moments decay every step).
      popularity_units: hidden widths of the popularity tower (fed by ``popularity``
        features: item popularity / user activity factors).
      popularity_keep: κ, how much popularity the served score keeps:
        ``r + κ · (pop(F) − pop(F_neutral))``. 0 (default) is the full intervention
        ``do(F = neutral)``, and serving then reads no popularity feature.
      propensity_weighting: ``"none"``, ``"ips"`` (each example's loss weighed by
        1 / its logged propensity) or ``"snips"`` (those weights divided by their batch
        mean), or ``"dr"``: doubly robust joint learning (DR-JL, Wang et al. ICML
        2019; `tfrs_debias.losses.doubly_robust`): the SNIPS-weighted error plus an
        imputation model's error on pairs sampled in the batch (each row's user with
        another row's item). ``"dr"`` is for ratings data (binary BCE tasks, no bias or
        popularity features). Needs a ``propensity`` feature. The validation loss is
        weighed alike.
      propensity_clip: propensities below it count as it (IPS weights <= 1 / clip).
      imputation_units: hidden widths of the imputation model of ``"dr"`` (over the
        relevance tower's input, which it does not train).
      dr_pairs: the unobserved pairs ``"dr"`` imputes the error of: ``"batch"`` (each
        row's user with the previous row's item: items as often as they are logged) or
        ``"uniform"`` (each row's user with an item drawn uniformly from the training
        vocabulary: the estimator's "every pair" taken literally; needs no item side
        features). On the MNAR simulator with the logged (true) propensities and strong
        self-selection, ``"uniform"`` lifted DR from −0.046 / −0.045 to +0.027 / +0.027
        AUC over naive (two seeds); with the estimated propensities it did so only
        with a stronger clip (``propensity_clip`` 0.2: +0.042 / +0.026 / +0.029 over
        three seeds, +0.005 at 0.1). With mild self-selection ``"batch"`` did better
        (``benchmarks/mnar.py``), so it is the default and the tuner searches both.
      slice_calibration: serve the logit corrected by a `SliceCalibration` (intercept,
        scale, and log exposure counts of the item and the user) fitted on a random
        slice after training; `train` sets it when given ``random_slice_files``.
      task_losses: per task, ``"bce"`` (pointwise, binary labels), ``"softmax"``
        (listwise softmax cross-entropy over the rows of a request),
        ``"pairwise_logistic"`` (over the pairs of a request with different labels),
        ``"mse"`` (regression: the task's output is its logit) or
        ``"weighted_logistic"`` (YouTube's watch-time loss: label > 0 is a positive
        weighted by the label, others negatives of weight 1; the output ``exp(logit)``
        estimates the expected label). The list losses need a ``request_id`` and are
        applied to the full (training path) logits; the regression losses add the bias
        part to the logit whatever ``bias_combine`` says (PAL is a product of
        probabilities). Defaults to BCE for binary (int64) labels and MSE for
        real-valued (float32) ones.
    """

    model: str = "position_debiased"
    tasks: tuple[str, ...] = ()
    task_weights: tuple[float, ...] = ()
    value_weights: tuple[float, ...] = ()
    embedding_dim: int = 32
    hidden_units: tuple[int, ...] = (256, 64)
    num_experts: int = 0
    expert_units: tuple[int, ...] = (64,)
    dropout: float = 0.0
    min_id_count: int = 1
    bias_embedding_dim: int = 8
    bias_hidden_units: tuple[int, ...] = (32,)
    bias_combine: str = "multiply"
    bias_feature_dropout: float = 0.0
    bias_logit_scale: float = 5.0
    observation_dropout: float = 0.0
    gradient_reversal: float = 0.0
    adversary_weight: float = 1.0
    gate_units: tuple[int, ...] = (16,)
    component_units: tuple[int, ...] = (64,)
    anchor_weights: tuple[float, float, float] = (0.1, 0.1, 0.0)
    item_marginal_alpha: float = 0.0
    learning_rate: float = 1e-3
    optimizer: str = "lazy_adam"
    learning_rate_schedule: str = "cosine"
    popularity_units: tuple[int, ...] = (16,)
    popularity_keep: float = 0.0
    propensity_weighting: str = "none"
    propensity_clip: float = 0.05
    imputation_units: tuple[int, ...] = (64,)
    dr_pairs: str = "batch"
    slice_calibration: bool = False
    task_losses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        problems = []
        if self.model not in REGISTRY:
            problems.append(f"model {self.model!r} is not one of {tuple(REGISTRY)}")
        if self.bias_combine not in COMBINES:
            problems.append(f"bias_combine {self.bias_combine!r} is not one of {COMBINES}")
        if not self.bias_logit_scale > 0:
            problems.append(f"bias_logit_scale must be > 0, got {self.bias_logit_scale}")
        for name in ("bias_feature_dropout", "observation_dropout", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1)")
        if self.tasks:
            for name in ("task_weights", "value_weights", "task_losses"):
                value = getattr(self, name)
                if value and len(value) != len(self.tasks):
                    problems.append(f"{name} needs one value per task {self.tasks}")
        if len(self.anchor_weights) != 3:
            problems.append("anchor_weights needs 3 values (user, item, bias)")
        if self.embedding_dim < 1 or not self.hidden_units:
            problems.append("embedding_dim and hidden_units must be positive")
        if self.gradient_reversal < 0 or self.item_marginal_alpha < 0:
            problems.append("gradient_reversal and item_marginal_alpha must be >= 0")
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            problems.append(
                f"learning_rate_schedule {self.learning_rate_schedule!r} is not one of "
                f"{LEARNING_RATE_SCHEDULES}"
            )
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.propensity_weighting not in PROPENSITY_WEIGHTINGS:
            problems.append(
                f"propensity_weighting {self.propensity_weighting!r} is not one of "
                f"{PROPENSITY_WEIGHTINGS}"
            )
        if self.dr_pairs not in DR_PAIRS:
            problems.append(f"dr_pairs {self.dr_pairs!r} is not one of {DR_PAIRS}")
        bad_losses = [x for x in self.task_losses if x not in TASK_LOSSES]
        if bad_losses:
            problems.append(f"task_losses {bad_losses} are not in {TASK_LOSSES}")
        list_losses = any(x in LIST_LOSS_NAMES for x in self.task_losses)
        if list_losses and self.propensity_weighting != "none":
            problems.append("propensity weighting applies to pointwise task losses only")
        if not 0 < self.propensity_clip <= 1:
            problems.append("propensity_clip must be in (0, 1]")
        if not 0 <= self.popularity_keep <= 1:
            problems.append("popularity_keep must be in [0, 1]")
        if problems:
            raise ValueError("bad estimator config: " + "; ".join(problems))

    def with_tasks(
        self, tasks: tuple[str, ...], real_valued: Sequence[str] = ()
    ) -> EstimatorConfig:
        """Fills in tasks (and default weights and losses: ``mse`` for the
        ``real_valued`` tasks, ``bce`` for the others) from the schema when not given."""
        if self.tasks and tuple(self.tasks) != tuple(tasks):
            raise ValueError(f"config tasks {self.tasks} differ from the data's tasks {tasks}")
        return dataclasses.replace(
            self,
            tasks=tuple(tasks),
            task_weights=self.task_weights or (1.0,) * len(tasks),
            value_weights=self.value_weights or (1.0,) * len(tasks),
            task_losses=self.task_losses
            or tuple("mse" if t in real_valued else "bce" for t in tasks),
        )

    def replace(self, **changes: Any) -> EstimatorConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimatorConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown estimator config keys {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> EstimatorConfig:
        return cls.from_dict(json.loads(text))


def resolve_value_weights(
    weights: Mapping[str, float] | Sequence[float] | None,
    tasks: Sequence[str],
    default: Sequence[float] = (),
) -> list[float]:
    """Per-task value weights in ``tasks`` order: a sequence as is, a mapping with tasks
    left out at 0, None for ``default`` (1 each when empty). Unknown tasks or a wrong
    length are a ``ValueError``."""
    tasks = tuple(tasks)
    if weights is None:
        return list(default) if default else [1.0] * len(tasks)
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(tasks))
        if unknown:
            raise ValueError(f"value weights name unknown tasks {unknown}; tasks are {list(tasks)}")
        return [float(weights.get(t, 0.0)) for t in tasks]
    weights = [float(w) for w in weights]
    if len(weights) != len(tasks):
        raise ValueError(f"value_weights needs one weight per task {list(tasks)}")
    return weights
