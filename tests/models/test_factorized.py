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
