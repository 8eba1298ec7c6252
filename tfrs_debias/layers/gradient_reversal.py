"""`GradientReversal`: identity forward, gradient multiplied by ``-strength`` backward.

Used to train an adversary on the bias tower (Zhang et al., "Towards Disentangling
Relevance and Bias in Unbiased Learning to Rank", arXiv 2212.13937): the adversary
learns to predict relevance from the bias representation while the reversed gradient
pushes the bias tower to carry no relevance.
"""

from __future__ import annotations

from tfrs_debias.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_debias")
class GradientReversal(keras.layers.Layer):
    """``y = x``; ``dL/dx = -strength · dL/dy``.

    Args:
      strength: the reversal factor α >= 0. Defaults to 1.
    """

    def __init__(self, strength: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.strength = float(strength)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        strength = self.strength

        @tf.custom_gradient
        def reverse(t):
            return tf.identity(t), lambda dy: -strength * dy

        return reverse(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "strength": self.strength}
