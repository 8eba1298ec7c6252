"""`LazyAdam`: Adam whose embedding-table updates touch only the rows in the batch.

Keras's Adam decays the first and second moments of *every* row of a table on each
step, even for a sparse (``tf.IndexedSlices``) gradient: the step costs O(table size),
so training slows down as the vocabulary grows (measured in ``benchmarks/step_time.py``).
The lazy variant (TensorFlow Addons' ``LazyAdam``, which no longer installs with
current TensorFlow) updates the moments and weights of the gathered rows only: a row's
moments decay when the row is seen, not every step. Dense gradients (the towers, small
tables) get Keras's Adam update, computed by TensorFlow's fused ``ResourceApplyAdam``
kernel.

Keras sums a sparse gradient's duplicated rows (``tf.unique`` + a segment sum) before
``update_step``; this optimizer does that once and no more: a small table's gradient
becomes a dense tensor in one segment sum (no ``tf.unique``), a large table's rows
arrive unique at ``update_step``.

For one row with gradient g at step t (duplicated indices summed first)::

    m <- β1·m + (1 − β1)·g
    v <- β2·v + (1 − β2)·g²
    w <- w − lr·√(1 − β2^t) / (1 − β1^t) · m / (√v + ε)
"""

from __future__ import annotations

from tfrs_debias.backend import keras, tf
from tfrs_debias.models.config import LEARNING_RATE_SCHEDULES


@keras.utils.register_keras_serializable(package="tfrs_debias")
class LazyAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with row-lazy updates for sparse gradients.

    Same arguments and slot variables as Keras's Adam (checkpoints are interchangeable);
    ``amsgrad`` is not supported for sparse gradients.

    Args:
      learning_rate: as Keras's Adam. Defaults to 0.001.
      dense_below_rows: tables with fewer rows than this (position x device crosses,
        small side features) take the dense update: gathering and scattering a batch's
        rows costs more than updating a small table whole. Defaults to 2048; 0 makes
        every sparse update lazy.
    """

    def __init__(
        self,
        learning_rate=0.001,
        dense_below_rows: int = 2048,
        name: str = "LazyAdam",
        **kwargs,
    ):
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam does not support amsgrad")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.dense_below_rows = int(dense_below_rows)

    def get_config(self) -> dict:
        return {**super().get_config(), "dense_below_rows": self.dense_below_rows}

    def _small(self, gradient: tf.IndexedSlices) -> int | None:
        """The table's row count when its gradient takes the dense update, else None."""
        shape = None if gradient.dense_shape is None else tf.get_static_value(gradient.dense_shape)
        rows = None if shape is None else int(shape[0])
        return rows if rows is not None and rows < self.dense_below_rows else None

    def _deduplicate_sparse_grad(self, grads):
        # Small tables: straight to a dense gradient (one segment sum over the table's
        # rows) instead of Keras's unique + segment sum followed by a densifying one.
        dense = []
        for grad in grads:
            rows = self._small(grad) if isinstance(grad, tf.IndexedSlices) else None
            if rows is not None:
                grad = tf.math.unsorted_segment_sum(grad.values, grad.indices, rows)
            dense.append(grad)
        return super()._deduplicate_sparse_grad(dense)

    def _hyper(self, dtype) -> dict[str, tf.Tensor]:
        """This step's ``lr``, ``beta_1``, ``beta_2``, their powers ``beta_1^t``,
        ``beta_2^t`` and ``epsilon`` (scaled when ``adaptive_epsilon``), in ``dtype``."""
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        beta_2_power = tf.pow(beta_2, step)
        epsilon = tf.cast(self.epsilon, dtype)
        if self.adaptive_epsilon:
            epsilon = epsilon * tf.sqrt(1 - beta_2_power)
        return {
            "lr": tf.cast(self.learning_rate, dtype),
            "beta_1": beta_1,
            "beta_2": beta_2,
            "beta_1_power": tf.pow(beta_1, step),
            "beta_2_power": beta_2_power,
            "epsilon": epsilon,
        }

    def _dense_update(self, gradient, variable):
        """Keras's dense Adam update in TensorFlow's fused ``ResourceApplyAdam`` kernel:
        one op per variable instead of a dozen element-wise ones (a step updates ~30
        variables, and on CPU each op's dispatch costs about as much as a small
        tower's arithmetic)."""
        h = self._hyper(variable.dtype)
        key = self._index_dict[self._var_key(variable)]
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[key].handle,
            v=self._velocities[key].handle,
            beta1_power=h["beta_1_power"],
            beta2_power=h["beta_2_power"],
            lr=h["lr"],
            beta1=h["beta_1"],
            beta2=h["beta_2"],
            epsilon=h["epsilon"],
            grad=gradient,
        )

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return self._dense_update(gradient, variable)
        rows_in_table = variable.shape[0]
        if rows_in_table is not None and rows_in_table < self.dense_below_rows:
            # A small table whose gradient's shape was unknown at trace time (`_small`
            # could not densify it): the dense update all the same.
            return self._dense_update(tf.convert_to_tensor(gradient), variable)
        h = self._hyper(variable.dtype)
        beta_1, beta_2, epsilon = h["beta_1"], h["beta_2"], h["epsilon"]
        alpha = h["lr"] * tf.sqrt(1 - h["beta_2_power"]) / (1 - h["beta_1_power"])
        # apply_gradients has summed duplicated rows (_deduplicate_sparse_grad): each
        # row is read and written once.
        rows, values = gradient.indices, gradient.values
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


def build_optimizer(
    name: str, learning_rate: float, schedule: str = "constant", decay_steps: int | None = None
) -> keras.optimizers.Optimizer:
    """The optimizer an `EstimatorConfig.optimizer` names: ``"lazy_adam"`` or ``"adam"``,
    at ``learning_rate``, held (``schedule="constant"``) or decayed to 0 along a cosine
    over ``decay_steps`` optimizer steps (``"cosine"``; constant without ``decay_steps``)."""
    optimizers = {"lazy_adam": LazyAdam, "adam": keras.optimizers.Adam}
    if name not in optimizers:
        raise ValueError(f"optimizer {name!r} is not one of {tuple(optimizers)}")
    if schedule not in LEARNING_RATE_SCHEDULES:  # EstimatorConfig's names
        raise ValueError(f"schedule {schedule!r} is not one of {LEARNING_RATE_SCHEDULES}")
    rate = learning_rate
    if schedule == "cosine" and decay_steps:
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    return optimizers[name](rate)
