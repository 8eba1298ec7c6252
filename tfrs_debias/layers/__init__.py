"""Keras layers the estimators are built from; all implement ``get_config``."""

from tfrs_debias.layers.bias_tower import BiasTower
from tfrs_debias.layers.feature_embedding import FeatureEmbedding
from tfrs_debias.layers.gradient_reversal import GradientReversal
from tfrs_debias.layers.mixture_of_logits import MixtureOfLogits
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.layers.mmoe import MMoE
from tfrs_debias.layers.slice_calibration import SliceCalibration
from tfrs_debias.layers.unique_rows import UniqueRows

__all__ = [
    "MLP",
    "MMoE",
    "BiasTower",
    "FeatureEmbedding",
    "GradientReversal",
    "MixtureOfLogits",
    "SliceCalibration",
    "UniqueRows",
]
