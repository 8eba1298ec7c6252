"""`MLP`: a stack of ReLU dense layers with an optional linear output layer."""

from __future__ import annotations

from collections.abc import Sequence

from tfrs_debias.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_debias")
class MLP(keras.layers.Layer):
    """``[batch, d_in] -> [batch, units[-1]]`` (or ``[batch, output_units]``).

    Args:
      units: hidden layer widths, each followed by ReLU.
      output_units: width of a final linear layer. Defaults to None (no output layer).
      dropout: dropout rate after each hidden layer (training only). Defaults to 0.
    """

    def __init__(
        self,
        units: Sequence[int],
        output_units: int | None = None,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.output_units = output_units
        self.dropout = float(dropout)
        self._layers = []
        for i, u in enumerate(self.units):
            self._layers.append(keras.layers.Dense(u, activation="relu", name=f"dense_{i}"))
            if self.dropout:
                self._layers.append(keras.layers.Dropout(self.dropout))
        if output_units is not None:
            self._layers.append(keras.layers.Dense(output_units, name="output"))

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        for layer in self._layers:
            x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
        return x

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": list(self.units),
            "output_units": self.output_units,
            "dropout": self.dropout,
        }
