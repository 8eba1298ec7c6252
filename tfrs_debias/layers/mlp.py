"""`MLP`: a stack of ReLU dense layers with an optional linear output layer."""

from __future__ import annotations

from collections.abc import Sequence

from tfrs_debias.backend import keras, tf
from tfrs_debias.layers.unique_rows import UniqueRows


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

    def call_on_blocks(
        self,
        blocks: Sequence[tuple[tf.Tensor, UniqueRows | None]],
        training: bool | None = None,
    ) -> tf.Tensor:
        """``self(concat([rows.spread(x) for x, rows in blocks]))`` without building the
        concatenation: each block ``x [n_k, d_k]`` holds one row per distinct key of
        ``rows`` (``rows`` None: one per example), so the first layer's product is taken
        per block on its distinct rows and spread. A block of `UniqueRows.of_table`
        rows (``x`` a whole small table) enters as ``one_hot @ (x @ W_k)``, in the
        same matmul as the per-example blocks. Same outputs and gradients."""
        if len(blocks) == 1 and (blocks[0][1] is None or blocks[0][1].size is None):
            x, rows = blocks[0]
            y = self(x, training=training)
            return y if rows is None else rows.spread(y)
        if not self._layers:  # the MLP is the identity
            return tf.concat([x if r is None else r.spread(x) for x, r in blocks], -1)
        first, rest = self._layers[0], self._layers[1:]
        widths = [int(x.shape[-1]) for x, _ in blocks]
        if not first.built:
            # Built through __call__ on no rows, so the weights get their scoped names
            # and Keras lifts their initializers out of a function being traced (an
            # export traces this before any eager call).
            self(tf.zeros([0, sum(widths)], blocks[0][0].dtype), training=False)
        # Per-example blocks and one-hot tables: one matmul over their columns; blocks
        # of distinct rows: their own product, spread. The kernel is split in one op
        # (its gradient one concat; a slice per block cost a full-kernel gradient each).
        columns, kernels, h = [], [], None
        for (x, rows), kernel in zip(blocks, tf.split(first.kernel, widths), strict=True):
            if rows is None:
                columns.append(x)
                kernels.append(kernel)
            elif rows.size is not None:
                columns.append(rows.one_hot(x.dtype))
                kernels.append(tf.matmul(x, kernel))
            else:
                part = rows.spread(tf.matmul(x, kernel))
                h = part if h is None else h + part
        if columns:
            dense = tf.matmul(tf.concat(columns, -1), tf.concat(kernels, 0))
            h = dense if h is None else h + dense
        h = first.activation(tf.nn.bias_add(h, first.bias))
        for layer in rest:
            h = layer(h, training=training) if isinstance(layer, keras.layers.Dropout) else layer(h)
        return h

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": list(self.units),
            "output_units": self.output_units,
            "dropout": self.dropout,
        }
