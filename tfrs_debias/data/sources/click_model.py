"""What the simulator and the MovieLens converter share (the click model): drawing
candidates, ranking them into slates with a logging policy, examination by position x
device, and click/like labels (biased, and their full-information, oracle and
examined twins)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class ExaminationModel:
    """True examination probability ``e(position, device) = top_d / (1 + position)^decay_d``.

    Args:
      devices: device names.
      device_probs: how often each device serves a request.
      decay: per-device power-law decay (phones decay faster than TVs).
      top: per-device examination probability at position 0.
    """

    devices: tuple[str, ...] = ("phone", "desktop", "tv")
    device_probs: tuple[float, ...] = (0.6, 0.3, 0.1)
    decay: tuple[float, ...] = (1.0, 0.6, 0.3)
    top: tuple[float, ...] = (1.0, 0.9, 0.8)

    def __post_init__(self) -> None:
        n = len(self.devices)
        if not (len(self.device_probs) == len(self.decay) == len(self.top) == n):
            raise ValueError("devices, device_probs, decay and top need the same length")
        if abs(sum(self.device_probs) - 1.0) > 1e-6:
            raise ValueError(f"device_probs must sum to 1, got {sum(self.device_probs)}")
        if not all(0 < t <= 1 for t in self.top):
            raise ValueError("top examination probabilities must be in (0, 1]")

    @classmethod
    def coerce(cls, value: ExaminationModel | dict) -> ExaminationModel:
        """``value`` as an `ExaminationModel` (JSON configs give a dict of lists)."""
        if isinstance(value, ExaminationModel):
            return value
        _check_keys(cls, value, "examination")
        return cls(**{k: tuple(v) for k, v in value.items()})

    def curves(self, num_positions: int) -> np.ndarray:
        """``[num_devices, num_positions]`` true examination probabilities."""
        pos = np.arange(num_positions, dtype=np.float64)
        decay = np.asarray(self.decay)[:, None]
        return np.asarray(self.top)[:, None] * (1.0 + pos[None, :]) ** (-decay)


@dataclasses.dataclass(frozen=True)
class LoggingPolicy:
    """The logging policy that ranks candidates into slates: by
    ``relevance · logit(rel_click) + popularity · pop_z + noise · Gumbel``.

    The defaults lean on popularity (as engagement-ranked feeds do): items shown high
    are often popular rather than relevant, so position bias misleads a naive model.
    With ``relevance >> popularity`` position instead acts as a relevance signal and a
    naive model can beat the oracle.
    """

    relevance: float = 0.5
    popularity: float = 1.5
    noise: float = 1.0

    @classmethod
    def coerce(cls, value: LoggingPolicy | dict) -> LoggingPolicy:
        """``value`` as a `LoggingPolicy` (JSON configs give a dict)."""
        if isinstance(value, LoggingPolicy):
            return value
        _check_keys(cls, value, "policy")
        return cls(**value)

    def scores(
        self, relevance_logit: np.ndarray, popularity_z: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Policy scores of candidates (``rank_slates`` takes the best)."""
        return (
            self.relevance * relevance_logit
            + self.popularity * popularity_z
            + self.noise * rng.gumbel(size=np.shape(relevance_logit))
        )


def _check_keys(cls, value, what: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object of {cls.__name__} fields, got {value!r}")
    unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} keys {sorted(unknown)}")


def gumbel_top_k(log_weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` indices per row drawn without replacement with probability ∝ exp(log_weights).

    ``log_weights`` is ``[batch, n]`` (or ``[n]``, broadcast to ``batch=1``); returns
    ``[batch, k]`` (Gumbel-top-k trick: one vectorised draw, no Python loop per row).
    """
    log_weights = np.atleast_2d(log_weights)
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    return top


def rank_slates(scores: np.ndarray, slate_length: int) -> np.ndarray:
    """Indices of the ``slate_length`` best ``scores`` per row, best first: ``[batch, L]``."""
    top = np.argpartition(-scores, slate_length - 1, axis=1)[:, :slate_length]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def draw_devices(device_prefs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One device index per row of ``device_prefs`` (``[batch, num_devices]`` probabilities)."""
    cum = np.cumsum(device_prefs, axis=1)
    u = rng.random((device_prefs.shape[0], 1)) * cum[:, -1:]
    return (u > cum).sum(axis=1)


def draw_labels(
    examination: np.ndarray,
    click_if_examined: np.ndarray,
    like_if_clicked: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Biased labels and their two twins for slates ``[batch, L]``.

    ``click ~ Bernoulli(e · f)``, ``like ~ Bernoulli(like_if_clicked)`` given a click.
    The oracle twin draws ``click`` with one examination for the whole slate, its
    mean weighted by ``f``: ``ē = Σ_p e_p f_p / Σ_p f_p``, so each slate's expected
    clicks are exactly those of the logs (``Σ_p ē f_p = Σ_p e_p f_p``) with no position
    effect. (The plain mean would lose clicks, because the logging policy puts the
    relevant items where examination is high.) The oracle twin is NOT a ceiling: its
    uniform mid-level examination wastes the informative top slots.

    The full-information twin (``full_`` prefix) examines every impression:
    ``click ~ Bernoulli(f)``, same slates and positions. It carries at least the
    information of the biased logs, so a model trained on it is the ceiling that
    "gap closed" is measured against.

    ``examined`` (``[batch, L]`` bool) says which impressions of the logs were examined:
    the examined twin (`twin_labels`) is the logs restricted to them, the same clicks
    with the unseen impressions left out. No estimator of the logs knows more, so a
    model trained on it bounds what debiasing these logs can reach.
    """
    weighted = (examination * click_if_examined).sum(axis=1, keepdims=True)
    oracle_exam = np.broadcast_to(
        weighted / np.maximum(click_if_examined.sum(axis=1, keepdims=True), 1e-12),
        examination.shape,
    )
    out = {}
    full_exam = np.ones_like(examination)
    for prefix, exam in (("", examination), ("oracle_", oracle_exam), ("full_", full_exam)):
        draw = rng.random(examination.shape)
        click = draw < exam * click_if_examined
        like = click & (rng.random(examination.shape) < like_if_clicked)
        out[prefix + "click"] = click.astype(np.int64)
        out[prefix + "like"] = like.astype(np.int64)
        if not prefix:
            # The same draw decides examination: u < e is "examined", and u < e·f is
            # the click, so P(click | examined) = f and every click was examined.
            out["examined"] = draw < exam
    return out


#: Twins of the train and valid splits (split-name prefixes), see `draw_labels`.
TWINS = ("", "full_", "oracle_", "examined_")


def twin_labels(
    requests: Mapping[str, np.ndarray], prefix: str, rows, tasks: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """``(labels [R, L] per task, impression mask [R·L] or None)`` of twin ``prefix`` for
    the requests ``rows`` of `draw_labels`' output. The examined twin keeps the logged
    labels and only the impressions that were examined."""
    source = "" if prefix == "examined_" else prefix
    labels = {t: requests[source + t][rows] for t in tasks}
    keep = requests["examined"][rows].reshape(-1) if prefix == "examined_" else None
    return labels, keep


def keep_rows(columns: Mapping[str, np.ndarray], keep: np.ndarray | None) -> dict:
    """``columns`` (one row per impression) restricted to the rows where ``keep``."""
    return dict(columns) if keep is None else {k: v[keep] for k, v in columns.items()}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p) - np.log1p(-p)
