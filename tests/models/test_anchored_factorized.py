import math

import numpy as np
import tensorflow as tf

from tests.models.support import SMALL
from tfrs_debias.models import (
    AnchoredFactorizedEstimator,
    EstimatorConfig,
    FactorizedEstimator,
)
from tfrs_debias.models.factorized import COMPONENTS


def test_anchor_loss_by_hand(data):
    schema, batch = data
    model = AnchoredFactorizedEstimator(
        schema,
        EstimatorConfig(
            model="anchored_factorized",
            anchor_weights=(1.0, 0.5, 2.0),
            task_weights=(1.0, 3.0),
            **SMALL,
        ),
    )
    labels = model.labels(batch)
    # The interaction component is not anchored: its logits (5) must not count.
    zeros = {name: tf.zeros([256, 2]) for name in COMPONENTS} | {
        "interaction": tf.fill([256, 2], 5.0)
    }
    # Every anchored component logit 0 -> BCE = ln 2 per task; Σ_k λ_k Σ_t w_t ln 2 = 3.5 · 4 · ln 2
    np.testing.assert_allclose(
        float(model.extra_loss(zeros, labels)), 3.5 * 4 * math.log(2), rtol=1e-5
    )
    assert (
        float(
            FactorizedEstimator(schema, model.config.replace(model="factorized")).extra_loss(
                zeros, labels
            )
        )
        == 0.0
    )
