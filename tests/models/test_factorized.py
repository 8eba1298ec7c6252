import numpy as np

from tests.models.support import small_model


def test_factorized_mixture_equals_gate_weighted_components(data):
    schema, batch = data
    model = small_model(schema, "factorized", bias_feature_dropout=0.0, item_marginal_alpha=0.25)
    out = model.components(batch)
    g, comp = out["gates"].numpy(), out["components"].numpy()
    assert g.shape == (256, 2, 3) and comp.shape == (256, 2, 4)
    # m = Σ_k g_k · comp_k over (interaction, user, item); PAL with the bias: σ(m)·σ(s)
    mix = (g * comp[..., :3]).sum(-1)
    p = 1 / (1 + np.exp(-mix)) / (1 + np.exp(-comp[..., 3]))
    np.testing.assert_allclose(model(batch).numpy(), np.log(p / (1 - p)), rtol=1e-4, atol=1e-5)
    # Serving: (g_r r + α g_c c) / (g_r + α g_c), the user-only and bias parts dropped.
    expected = (g[..., 0] * comp[..., 0] + 0.25 * g[..., 2] * comp[..., 2]) / (
        g[..., 0] + 0.25 * g[..., 2]
    )
    np.testing.assert_allclose(model.debiased_logits(batch).numpy(), expected, rtol=1e-5, atol=1e-6)
    plain = small_model(schema, "factorized")
    np.testing.assert_array_equal(
        plain.debiased_logits(batch).numpy(), plain.relevance_logits(batch).numpy()
    )


def test_factorized_towers_on_distinct_rows_match_every_row(data):
    """The user-only and item-only towers and the gate run once per distinct user / item
    of the batch; outputs and gradients equal running them on every row."""
    import tensorflow as tf

    schema, batch = data
    model = small_model(schema, "factorized", bias_feature_dropout=0.0)
    indices = model.embedding.indices(batch)
    (users_x, users), (items_x, items) = model.side_blocks(batch, indices)
    assert 0 < users.first.shape[0] < 256 and 0 < items.first.shape[0] < 256
    assert users_x.shape[0] == users.first.shape[0] and items_x.shape[0] == items.first.shape[0]
    # Each representative row is the user (item) of every row it stands for.
    for name in ("user_id", "user_segment"):
        np.testing.assert_array_equal(users.spread(users.take(indices[name])), indices[name])
    for name in ("item_id", "item_genre"):
        np.testing.assert_array_equal(items.spread(items.take(indices[name])), indices[name])
    with tf.GradientTape(persistent=True) as tape:
        out = model.components(batch)
        user, item, _ = model.side_vectors(batch)
        per_row = tf.stack([model.user_tower(user), model.item_tower(item)], axis=-1)
        gates = model.mixture.gate_weights(tf.concat([user, item], axis=-1))
        loss = tf.reduce_sum(out["components"][..., 1:3] * 1.5) + tf.reduce_sum(out["gates"] ** 2)
        ref = tf.reduce_sum(per_row * 1.5) + tf.reduce_sum(gates**2)
    np.testing.assert_allclose(out["components"][..., 1:3], per_row, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["gates"], gates, rtol=1e-5, atol=1e-6)
    towers = [model.user_tower, model.item_tower, model.mixture, model.embedding]
    for v in [w for layer in towers for w in layer.trainable_variables]:
        got, want = tape.gradient(loss, v), tf.convert_to_tensor(tape.gradient(ref, v)).numpy()
        # float32 sums over 256 rows in another order (entries that cancel differ by a
        # few 1e-6): the tolerance is relative to the gradient's largest entry.
        np.testing.assert_allclose(
            tf.convert_to_tensor(got), want, rtol=1e-4, atol=1e-4 * np.abs(want).max()
        )


def test_factorized_side_with_a_float_feature_runs_on_every_row(data):
    """A float item feature cannot key distinct rows: the item side falls back to every
    row (``rows`` None) while the user side still runs once per distinct user, and the
    mixture is the same as on every row."""
    import tensorflow as tf

    from tfrs_debias.schema import Feature

    schema, batch = data
    schema = schema.replace(add=[Feature("item_score", "float32", "item_feature")])
    batch = dict(batch)
    batch["item_score"] = tf.linspace(0.0, 1.0, 256)
    model = small_model(schema, "factorized", bias_feature_dropout=0.0)
    indices = model.embedding.indices(batch)
    user, item, _ = model.side_vectors(batch)
    (_, users), (item_x, items) = model.side_blocks(batch, indices)
    assert items is None and users is not None
    np.testing.assert_array_equal(item_x, item)
    out = model.components(batch)
    np.testing.assert_allclose(
        out["gates"], model.mixture.gate_weights(tf.concat([user, item], -1)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(out["item"], model.item_tower(item), rtol=1e-5, atol=1e-6)
