import pytest

from tfrs_debias.models import (
    EstimatorConfig,
)


def test_config_json_round_trip_and_errors():
    c = EstimatorConfig(model="factorized", tasks=("click",), anchor_weights=(1, 0.5, 0))
    assert EstimatorConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="model 'nope'"):
        EstimatorConfig(model="nope")
    with pytest.raises(ValueError, match="bias_feature_dropout must be in"):
        EstimatorConfig(bias_feature_dropout=1.5)
    with pytest.raises(ValueError, match="task_weights needs one value per task"):
        EstimatorConfig(tasks=("click", "like"), task_weights=(1.0,))
    with pytest.raises(ValueError, match=r"unknown estimator config keys \['widht'\]"):
        EstimatorConfig.from_dict({"widht": 3})
