"""`MatrixFactorization`: plain logistic matrix factorisation on (user, item, label)
rows, the biased-data baseline of the MNAR-ratings literature (Coat, Yahoo! R3: "MF"
trained on the self-selected ratings, scored on the random test).

``P(label = 1 | u, i) = σ(b + b_u + b_i + p_u · q_i)``, fitted by full-batch Adam on the
mean log-loss plus ``l2 · (‖p_u‖² + ‖q_i‖² + b_u² + b_i²)`` averaged over the rows (each
row regularises its own user and item, as SGD-trained MF does). NumPy only: a
yardstick that shares no code with the estimators it measures. `fit_on_validation`
picks ``l2`` by the validation log-loss, never by the test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass
class MatrixFactorization:
    """Logistic MF.

    Args:
      dim: latent factors per user and item. Defaults to 16.
      l2: the regularisation weight. Defaults to 1e-2.
      iterations: full-batch Adam steps. Defaults to 500.
      learning_rate: Adam's step. Defaults to 0.05.
      seed: initialisation seed.
    """

    dim: int = 16
    l2: float = 1e-2
    iterations: int = 500
    learning_rate: float = 0.05
    seed: int = 0

    def fit(self, users: np.ndarray, items: np.ndarray, labels: np.ndarray) -> MatrixFactorization:
        self.users = {u: k for k, u in enumerate(np.unique(users))}
        self.items = {i: k for k, i in enumerate(np.unique(items))}
        u, i = self._index(users, self.users), self._index(items, self.items)
        y = np.asarray(labels, np.float64)
        rng = np.random.default_rng(self.seed)
        params = {
            "b": np.array([np.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))]),
            "bu": np.zeros(len(self.users)),
            "bi": np.zeros(len(self.items)),
            "p": rng.normal(0, 0.1, (len(self.users), self.dim)),
            "q": rng.normal(0, 0.1, (len(self.items), self.dim)),
        }
        moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
        for step in range(1, self.iterations + 1):
            grads = self._gradients(params, u, i, y)
            for k, g in grads.items():
                m, v = moments[k]
                m[:] = 0.9 * m + 0.1 * g
                v[:] = 0.999 * v + 0.001 * g * g
                m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
                params[k] -= self.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
        self.params = params
        return self

    def _gradients(self, params, u, i, y) -> dict[str, np.ndarray]:
        p, q = params["p"][u], params["q"][i]
        logit = params["b"][0] + params["bu"][u] + params["bi"][i] + np.sum(p * q, axis=1)
        err = (1.0 / (1.0 + np.exp(-logit)) - y) / len(y)  # d mean log-loss / d logit
        lam = 2.0 * self.l2 / len(y)
        gp, gq = err[:, None] * q + lam * p, err[:, None] * p + lam * q
        return {
            "b": np.array([err.sum()]),
            "bu": np.bincount(u, err + lam * params["bu"][u], len(params["bu"])),
            "bi": np.bincount(i, err + lam * params["bi"][i], len(params["bi"])),
            "p": _scatter(u, gp, params["p"].shape),
            "q": _scatter(i, gq, params["q"].shape),
        }

    @staticmethod
    def _index(values: np.ndarray, index: dict) -> np.ndarray:
        return np.array([index.get(v, -1) for v in np.asarray(values).tolist()], np.int64)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``[rows]`` probabilities; an unseen user or item contributes nothing."""
        u, i = self._index(users, self.users), self._index(items, self.items)
        params = self.params
        logit = np.full(len(u), params["b"][0])
        known_u, known_i = u >= 0, i >= 0
        logit[known_u] += params["bu"][u[known_u]]
        logit[known_i] += params["bi"][i[known_i]]
        both = known_u & known_i
        logit[both] += np.sum(params["p"][u[both]] * params["q"][i[both]], axis=1)
        return 1.0 / (1.0 + np.exp(-logit))

    @classmethod
    def fit_on_validation(
        cls,
        train: tuple[np.ndarray, np.ndarray, np.ndarray],
        valid: tuple[np.ndarray, np.ndarray, np.ndarray],
        l2s: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
        **kwargs,
    ) -> MatrixFactorization:
        """The model whose ``l2`` gives the lowest log-loss on ``valid``."""
        best, best_loss = None, np.inf
        for l2 in l2s:
            model = cls(l2=l2, **kwargs).fit(*train)
            p = np.clip(model.predict(valid[0], valid[1]), 1e-7, 1 - 1e-7)
            y = np.asarray(valid[2], np.float64)
            loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
            if loss < best_loss:
                best, best_loss = model, loss
        assert best is not None  # (l2s is not empty)
        return best


def _scatter(index: np.ndarray, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape)
    np.add.at(out, index, rows)
    return out
