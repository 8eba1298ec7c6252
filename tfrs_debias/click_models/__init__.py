"""Click models as baselines and diagnostics on any click log: PBM by EM, rank and
document CTR, and the literature's log-likelihood and perplexity."""

from tfrs_debias.click_models.click_log import ClickLog
from tfrs_debias.click_models.ctr_baselines import DocumentCTR, RankCTR
from tfrs_debias.click_models.metrics import log_likelihood, perplexity, perplexity_by_rank
from tfrs_debias.click_models.position_based_model import PositionBasedModel

__all__ = [
    "ClickLog",
    "DocumentCTR",
    "PositionBasedModel",
    "RankCTR",
    "log_likelihood",
    "perplexity",
    "perplexity_by_rank",
]
