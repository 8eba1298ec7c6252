"""`MnarRatingsSimulator`: explicit feedback missing not at random, in the standard
semi-synthetic protocol of the debiasing literature (Schnabel et al. 2016; Wang et al.
2019), with a biased training set and a randomly exposed test set.

* True ratings 1..5 of every (user, item) pair from a latent-factor model with item
  quality, cut at quantiles so that ratings >= 4 are ``positive_rate`` of all pairs.
* Observation (what the biased training set holds): ``P(O=1) = σ(a + β_r · (r − 3) +
  β_pop · log q_i + β_act · log w_u)``: users rate what they like (self-selection, ``β_r``),
  popular items and active users are seen more (``q_i``, ``w_u`` log-normal); ``a`` is set
  so that a ``density`` share of all pairs is observed.
* Test: ``test_items`` items per user drawn uniformly (random exposure), their true
  ratings; users' activity and items' popularity give the buckets of the report.

`write` produces the same dataset folder as ``tfrs-debias ratings`` (train/valid/test,
optional random slice, estimated propensities, truth).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfrs_debias.data.sources.ratings import write_ratings_dataset


@dataclasses.dataclass(frozen=True)
class MnarRatingsConfig:
    num_users: int = 1000
    num_items: int = 500
    latent_dim: int = 4
    positive_rate: float = 0.15
    density: float = 0.03
    rating_effect: float = 0.8
    popularity_effect: float = 1.0
    activity_effect: float = 0.7
    test_items: int = 10
    seed: int = 0


class MnarRatingsSimulator:
    """Draws a biased (MNAR) training set and a random test set; see the module docstring."""

    def __init__(self, config: MnarRatingsConfig | None = None):
        self.config = config or MnarRatingsConfig()

    def ratings(self) -> np.ndarray:
        """``[users, items]`` true ratings 1..5."""
        c = self.config
        rng = np.random.default_rng(c.seed)
        users = rng.normal(size=(c.num_users, c.latent_dim))
        items = rng.normal(size=(c.num_items, c.latent_dim))
        quality = rng.normal(scale=0.5, size=c.num_items)
        score = users @ items.T / np.sqrt(c.latent_dim) + quality
        cuts = np.quantile(score, [0.45, 0.7, 1 - c.positive_rate, 1 - c.positive_rate / 3])
        return 1 + np.searchsorted(cuts, score).astype(np.int64)

    def simulate(self):
        """``(train, test, observation_probability)``: train and test as
        ``(users, items, ratings)`` triples; the true ``[users, items]`` probabilities."""
        c = self.config
        rng = np.random.default_rng(c.seed + 1)
        ratings = self.ratings()
        popularity = rng.lognormal(sigma=1.0, size=c.num_items)
        activity = rng.lognormal(sigma=1.0, size=c.num_users)
        logit = (
            c.rating_effect * (ratings - 3)
            + c.popularity_effect * np.log(popularity)[None, :]
            + c.activity_effect * np.log(activity)[:, None]
        )
        low, high = -30.0, 30.0  # bisect the offset a for the target density
        for _ in range(60):
            mid = (low + high) / 2
            if (1 / (1 + np.exp(-(logit + mid)))).mean() > c.density:
                high = mid
            else:
                low = mid
        prob = 1 / (1 + np.exp(-(logit + low)))
        observed = rng.random(prob.shape) < prob
        tu, ti = np.nonzero(observed)
        eu = np.repeat(np.arange(c.num_users), c.test_items)
        ei = np.concatenate(
            [rng.choice(c.num_items, c.test_items, replace=False) for _ in range(c.num_users)]
        )
        return (tu, ti, ratings[tu, ti]), (eu, ei, ratings[eu, ei]), prob

    def write(
        self,
        out_dir: str,
        slice_fraction: float = 0.0,
        overwrite: bool = False,
        progress: bool = True,
        true_propensities: bool = False,
    ) -> dict[str, list[str]]:
        """Writes the dataset folder; the training rows' ``propensity`` is estimated as
        for real data, or with ``true_propensities`` the simulator's own observation
        probabilities (a diagnostic: what IPS can do when propensities are right)."""
        train, test, prob = self.simulate()
        return write_ratings_dataset(
            train,
            test,
            out_dir,
            slice_fraction=slice_fraction,
            seed=self.config.seed,
            overwrite=overwrite,
            progress=progress,
            metadata={"source": "mnar_ratings", "config": dataclasses.asdict(self.config)},
            propensities=prob[train[0], train[1]] if true_propensities else None,
        )
