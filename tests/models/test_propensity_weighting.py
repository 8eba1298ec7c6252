"""Propensity-weighted losses (IPS, SNIPS, clipping) by hand, the propensity they need,
an export round trip, and the tuner's search over the weighting."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.data.io.reader import read_columns
from tfrs_debias.data.sources.mnar_ratings import MnarRatingsConfig, MnarRatingsSimulator
from tfrs_debias.models import EstimatorConfig, build_estimator
from tfrs_debias.schema import Feature, ImpressionSchema
from tfrs_debias.serving import export_saved_model
from tfrs_debias.training import train

SMALL = dict(embedding_dim=4, hidden_units=(8,), component_units=(4,), gate_units=(4,))


SCHEMA = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False).replace(
    add=[Feature("prop", "float32", "propensity")]
)


def _model(weighting, clip=0.05):
    config = EstimatorConfig(
        model="multi_task", propensity_weighting=weighting, propensity_clip=clip, **SMALL
    )
    return build_estimator(SCHEMA, config)


def test_ips_snips_and_clipping_by_hand():
    # labels 1, 0; logits ln 3 (p = 0.75) and 0 (p = 0.5): BCE = -ln 0.75 and ln 2.
    labels = tf.constant([[1.0], [0.0]])
    logits = tf.constant([[math.log(3.0)], [0.0]])
    bce = np.array([-math.log(0.75), math.log(2.0)])
    features = {"prop": tf.constant([0.5, 0.02])}  # 0.02 is clipped to 0.05: weight 20
    ips = _model("ips")
    w = ips.example_weights(features).numpy()
    np.testing.assert_allclose(w, [2.0, 20.0])
    loss = ips.task_loss(
        labels, logits, compute_metrics=False, weights=ips.example_weights(features)
    )
    assert float(loss) == pytest.approx((2 * bce[0] + 20 * bce[1]) / 2, rel=1e-6)
    snips = _model("snips")
    np.testing.assert_allclose(
        snips.example_weights(features).numpy(), [2 / 11, 20 / 11], rtol=1e-6
    )
    loss = snips.task_loss(
        labels, logits, compute_metrics=False, weights=snips.example_weights(features)
    )
    assert float(loss) == pytest.approx((2 * bce[0] + 20 * bce[1]) / 11 / 2, rel=1e-6)
    # A looser clip: 0.02 counts as 0.02 (weight 50).
    np.testing.assert_allclose(_model("ips", clip=0.01).example_weights(features), [2.0, 50.0])
    none = _model("none")
    assert none.example_weights(features) is None
    assert float(none.task_loss(labels, logits, compute_metrics=False)) == pytest.approx(
        bce.mean(), rel=1e-6
    )


def test_weighting_needs_a_propensity_feature():
    schema = ImpressionSchema.default(tasks=("click",), bias=False)
    with pytest.raises(ValueError, match="needs a propensity feature"):
        build_estimator(schema, EstimatorConfig(model="multi_task", propensity_weighting="ips"))
    with pytest.raises(ValueError, match="propensity_weighting 'dr' is not one of"):
        EstimatorConfig(propensity_weighting="dr")
    with pytest.raises(ValueError, match="propensity_clip must be in"):
        EstimatorConfig(propensity_clip=0.0)


def test_snips_training_round_trips_through_export(tmp_path):
    out = str(tmp_path / "mnar")
    MnarRatingsSimulator(MnarRatingsConfig(num_users=150, num_items=80, seed=2)).write(
        out, progress=False
    )
    folder = LogDirectory(out)
    result = train(
        folder.require("train"),
        str(tmp_path / "run"),
        EstimatorConfig(model="factorized", propensity_weighting="snips", **SMALL),
        folder.schema(),
        epochs=2,
        verbose=0,
    )
    assert np.isfinite(result.metrics["final"]["loss"])
    path = export_saved_model(result.model, str(tmp_path / "export"))
    test = read_columns(folder.require("test"), folder.schema())
    inputs = {
        "user_id": tf.constant(test["user_id"][:50]),
        "item_id": tf.constant(test["item_id"][:50]),
    }
    served = tf.saved_model.load(path).signatures["serving_default"](**inputs)["click"].numpy()
    expected = result.model.debiased_probabilities(inputs).numpy()[:, 0]
    np.testing.assert_allclose(served, expected, rtol=1e-5)
    assert os.path.exists(os.path.join(path, "saved_model.pb"))


def test_tuner_searches_the_weighting_when_propensities_are_logged():
    from tfrs_debias.tuning import SearchSpace
    from tfrs_debias.tuning.search_space import config_fields

    plain = SearchSpace.from_json("multi_task", None, [], schema=SCHEMA.replace(drop=["prop"]))
    assert "propensity_weighting" not in plain.entries
    space = SearchSpace.from_json("multi_task", None, ["propensity_weighting=snips"], schema=SCHEMA)
    assert space.entries["propensity_weighting"] == "snips"
    values = {k: (v[0] if isinstance(v, list) else v) for k, v in space.entries.items()}
    values["learning_rate"] = 1e-3
    fields = config_fields("multi_task", values, ("click",))
    assert (fields["propensity_weighting"], fields["propensity_clip"]) == ("snips", 0.02)
    build_estimator(SCHEMA, EstimatorConfig.from_dict(fields))
