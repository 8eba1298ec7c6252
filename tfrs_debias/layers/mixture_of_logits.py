"""`MixtureOfLogits`: softmax-gated mixture of component logits (arXiv 2306.04039)."""

from __future__ import annotations

from collections.abc import Sequence

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.mlp import MLP
from tfrs_debias.layers.unique_rows import UniqueRows


@keras.utils.register_keras_serializable(package="tfrs_debias")
class MixtureOfLogits(keras.layers.Layer):
    """Gate weights ``g [batch, num_tasks, K]`` from features; ``logit_t = Σ_k g_k,t · comp_k,t``.

    Args:
      num_components: K.
      num_tasks: T.
      gate_units: hidden widths of the gating MLP. Defaults to ``(16,)``.
    """

    def __init__(
        self, num_components: int, num_tasks: int, gate_units: Sequence[int] = (16,), **kwargs
    ):
        super().__init__(**kwargs)
        self.num_components = int(num_components)
        self.num_tasks = int(num_tasks)
        self.gate_units = tuple(int(u) for u in gate_units)
        self.gate = MLP(
            self.gate_units, output_units=self.num_tasks * self.num_components, name="gate"
        )
        # Sublayers build themselves; some are reached through methods other than
        # __call__, so mark this container built (no "not built" warning on export).
        self.built = True

    def gate_weights(self, gate_inputs: tf.Tensor) -> tf.Tensor:
        """``[batch, num_tasks, num_components]``, each row a softmax."""
        return self._softmax(self.gate(gate_inputs))

    def gate_weights_on_blocks(
        self, blocks: Sequence[tuple[tf.Tensor, UniqueRows | None]]
    ) -> tf.Tensor:
        """`gate_weights` of the concatenated blocks, each given on its distinct rows
        (`MLP.call_on_blocks`)."""
        return self._softmax(self.gate.call_on_blocks(blocks))

    def _softmax(self, gate_logits: tf.Tensor) -> tf.Tensor:
        logits = tf.reshape(gate_logits, [-1, self.num_tasks, self.num_components])
        # Written out: oneDNN's softmax kernel over a last axis of 3 cost ~0.5 ms per
        # 4096-row step, more than the gate's matmul. The max only keeps exp in range:
        # a softmax does not change with a shift, so its gradient through the max is
        # zero and is not computed (its Equal/mask ops cost ~0.35 ms a step).
        e = tf.exp(logits - tf.stop_gradient(tf.reduce_max(logits, axis=-1, keepdims=True)))
        return e / tf.reduce_sum(e, axis=-1, keepdims=True)

    @staticmethod
    def mix(gates: tf.Tensor, components: tf.Tensor) -> tf.Tensor:
        """``Σ_k gates[..., k] · components[..., k]`` -> ``[batch, num_tasks]``."""
        return tf.reduce_sum(gates * components, axis=-1)

    def call(self, gate_inputs: tf.Tensor, components: tf.Tensor) -> tf.Tensor:
        return self.mix(self.gate_weights(gate_inputs), components)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_components": self.num_components,
            "num_tasks": self.num_tasks,
            "gate_units": list(self.gate_units),
        }
