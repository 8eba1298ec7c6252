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
    with pytest.raises(ValueError, match="propensity_weighting 'aipw' is not one of"):
        EstimatorConfig(propensity_weighting="aipw")
    # Doubly robust is for ratings: click logs with a bias tower are refused.
    with_bias = ImpressionSchema.default(tasks=("click",)).replace(
        add=[Feature("prop", "float32", "propensity")]
    )
    with pytest.raises(ValueError, match="'dr' .* is for ratings data"):
        build_estimator(with_bias, EstimatorConfig(model="multi_task", propensity_weighting="dr"))
    with pytest.raises(ValueError, match="propensity_clip must be in"):
        EstimatorConfig(propensity_clip=0.0)


def test_doubly_robust_loss_pairs_each_user_with_the_previous_rows_item():
    from tfrs_debias.losses import doubly_robust_terms

    model = _model("dr")
    inputs = {
        "user_id": tf.constant([1, 2, 3], tf.int64),
        "item_id": tf.constant([10, 20, 30], tf.int64),
        "click": tf.constant([1, 0, 1], tf.int64),
        "prop": tf.constant([0.5, 0.25, 1.0]),
    }
    out = model.forward(inputs)
    total = model._loss(inputs, out)
    labels = model.labels(inputs)
    w = model.example_weights(inputs)
    # SNIPS-normalised: 1/p = 2, 4, 1 over their mean 7/3.
    np.testing.assert_allclose(w.numpy(), [6 / 7, 12 / 7, 3 / 7], rtol=1e-6)
    observed = model.task_loss(labels, out["logits"], compute_metrics=False, weights=w)
    # The sampled pairs, written out: (user 1, item 30), (user 2, item 10), (user 3, item 20).
    sampled = {"user_id": tf.constant([1, 2, 3], tf.int64), "item_id": tf.constant([30, 10, 20])}
    sampled["item_id"] = tf.cast(sampled["item_id"], tf.int64)
    terms = doubly_robust_terms(
        labels[:, 0],
        out["logits"][:, 0],
        model.imputation(model.pair_vector(inputs))[:, 0],
        model.relevance_logits(sampled)[:, 0],
        model.imputation(model.pair_vector(sampled))[:, 0],
        w,
    )
    expected = observed + tf.reduce_mean(terms["imputed"] + terms["imputation"])
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    # The imputation model is trained, and is no part of what is served.
    assert any("imputation" in v.name for v in model.trainable_variables)


@pytest.mark.parametrize(("model", "weighting"), [("factorized", "snips"), ("multi_task", "dr")])
def test_weighted_training_round_trips_through_export(tmp_path, model, weighting):
    out = str(tmp_path / "mnar")
    MnarRatingsSimulator(MnarRatingsConfig(num_users=150, num_items=80, seed=2)).write(
        out, progress=False
    )
    folder = LogDirectory(out)
    result = train(
        folder.require("train"),
        str(tmp_path / "run"),
        EstimatorConfig(model=model, propensity_weighting=weighting, **SMALL),
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
    assert (fields["propensity_weighting"], fields["propensity_clip"]) == ("snips", 0.001)
    assert SearchSpace.from_json("multi_task", None, [], schema=SCHEMA).entries[
        "propensity_clip"
    ] == [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
    build_estimator(SCHEMA, EstimatorConfig.from_dict(fields))
    # Ratings data (no bias features) may also try the doubly robust loss.
    full = SearchSpace.from_json("multi_task", None, [], schema=SCHEMA)
    assert full.entries["propensity_weighting"] == ["none", "ips", "snips", "dr"]
    assert full.entries["dr_pairs"] == ["batch", "uniform"]
    with_bias = ImpressionSchema.default(tasks=("click",)).replace(
        add=[Feature("prop", "float32", "propensity")]
    )
    clicks = SearchSpace.from_json("multi_task", None, [], schema=with_bias)
    assert clicks.entries["propensity_weighting"] == ["none", "ips", "snips"]
    assert "dr_pairs" not in clicks.entries


def test_uniform_doubly_robust_pairs_draw_items_from_the_whole_vocabulary():
    vocabulary = np.arange(100, 110, dtype=np.int64)  # 10 item ids
    config = EstimatorConfig(
        model="multi_task", propensity_weighting="dr", dr_pairs="uniform", **SMALL
    )
    model = build_estimator(
        SCHEMA, config, {"user_id": np.arange(5, dtype=np.int64), "item_id": vocabulary}
    )
    batch = 4000
    inputs = {
        "user_id": tf.range(batch, dtype=tf.int64) % 5,
        "item_id": tf.fill([batch], tf.constant(105, tf.int64)),  # every row logs item 105
    }
    sampled = model.doubly_robust_pairs(inputs)
    items = sampled["item_id"].numpy()
    np.testing.assert_array_equal(sampled["user_id"].numpy(), inputs["user_id"].numpy())
    counts = np.array([(items == i).sum() for i in vocabulary])
    assert counts.sum() == batch  # only vocabulary ids, never the logged distribution
    # Uniform: each of 10 ids ~400 times (binomial sd ~19; 6 sd either side).
    assert counts.min() > 280 and counts.max() < 520, counts
    # Keyed by the step: the same draws again (a resumed run), not the batch's items.
    np.testing.assert_array_equal(model.doubly_robust_pairs(inputs)["item_id"].numpy(), items)
    # "batch" (the default) pairs each user with the previous row's item.
    rolled = _model("dr").doubly_robust_pairs(
        {"user_id": tf.constant([1, 2, 3]), "item_id": tf.constant([7, 8, 9])}
    )
    np.testing.assert_array_equal(rolled["item_id"].numpy(), [9, 7, 8])
    # Item side features cannot be drawn with the ids.
    with_genre = SCHEMA.replace(add=[Feature("genre", "int64", "item_feature", num_values=3)])
    with pytest.raises(ValueError, match="dr_pairs 'uniform' draws item ids alone"):
        build_estimator(with_genre, config)
    with pytest.raises(ValueError, match="dr_pairs 'all' is not one of"):
        EstimatorConfig(dr_pairs="all")
