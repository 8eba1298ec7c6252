import pytest

from tests.layers.support import DEVICE, POSITION
from tfrs_debias.backend import keras
from tfrs_debias.layers import (
    MLP,
    BiasTower,
    FeatureEmbedding,
    GradientReversal,
    MixtureOfLogits,
    MMoE,
    SliceCalibration,
)


@pytest.mark.parametrize(
    "layer",
    [
        MLP((4, 3), output_units=2, dropout=0.1),
        GradientReversal(0.5),
        MMoE(2, 3, (4,)),
        MixtureOfLogits(4, 2, (8,)),
        FeatureEmbedding([POSITION, DEVICE], 4, {"x": [1, 2]}),
        BiasTower([POSITION, DEVICE], 2, 4, (8,), 0.1, 0.2, logit_scale=3.0),
        SliceCalibration(2, 5, 7),
    ],
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    registered = keras.utils.get_registered_object(f"tfrs_debias>{type(layer).__name__}")
    assert registered is type(layer)
