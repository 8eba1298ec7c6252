"""`MMoE`: multi-gate mixture of experts (Ma et al., KDD 2018; used in YouTube's
"Recommending What Video to Watch Next", RecSys 2019)."""

from __future__ import annotations

from collections.abc import Sequence

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.mlp import MLP


@keras.utils.register_keras_serializable(package="tfrs_debias")
class MMoE(keras.layers.Layer):
    """``[batch, d] -> [batch, num_tasks, expert_units[-1]]``.

    ``out_t = Σ_e softmax(W_t x)_e · expert_e(x)``: experts are shared, each task has
    its own softmax gate over them.

    Args:
      num_tasks: number of gates.
      num_experts: E, the mixture width.
      expert_units: hidden widths of each expert MLP.
    """

    def __init__(self, num_tasks: int, num_experts: int, expert_units: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        if num_experts < 1 or num_tasks < 1:
            raise ValueError("num_experts and num_tasks must be >= 1")
        self.num_tasks = int(num_tasks)
        self.num_experts = int(num_experts)
        self.expert_units = tuple(int(u) for u in expert_units)
        self.experts = [MLP(self.expert_units, name=f"expert_{e}") for e in range(num_experts)]
        self.gates = [keras.layers.Dense(num_experts, name=f"gate_{t}") for t in range(num_tasks)]

    def gate_weights(self, x: tf.Tensor) -> tf.Tensor:
        """``[batch, num_tasks, num_experts]`` softmax gate weights."""
        return tf.stack([tf.nn.softmax(g(x), axis=-1) for g in self.gates], axis=1)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        experts = tf.stack([e(x) for e in self.experts], axis=1)  # [B, E, H]
        return tf.einsum("bte,beh->bth", self.gate_weights(x), experts)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_experts": self.num_experts,
            "expert_units": list(self.expert_units),
        }
