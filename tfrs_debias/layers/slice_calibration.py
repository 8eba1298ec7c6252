"""`SliceCalibration`: the served logit corrected by a few weights fitted on a randomly
exposed slice.

On ratings missing not at random, a model trained on the biased log ranks by what
users chose to rate, and how often an item was rated (or a user rated) carries
relevance the log's selection distorts. A small randomized slice (a few hundred rows
where items were shown at random) is too small to train a model on, but enough to fit
a handful of weights, the "learned debiasing weight fitted on the slice" of the
uniform-data methods (e.g. Liu et al., SIGIR 2020, *A General Knowledge Distillation
Framework for Counterfactual Recommendation via Uniform Data*). Per task:

    z' = a + b · z + c · log(1 + n_item) + d · log(1 + n_user)

with ``z`` the served logit and ``n`` the training-log exposure counts of the item and
the user (looked up by vocabulary index; unknown ids count 0). The weights are fitted by
logistic regression on the slice (`tfrs_debias.training.calibrate_on_slice`); until
then the layer is the identity (``a = c = d = 0``, ``b = 1``). Counts and weights are
non-trainable variables: they are saved with the model and exported with its serving
signatures, which read the ids only.
"""

from __future__ import annotations

import numpy as np

from tfrs_debias.backend import keras, tf

#: Order of the fitted weights per task.
TERMS = ("intercept", "logit", "log_item_count", "log_user_count")


@keras.utils.register_keras_serializable(package="tfrs_debias")
class SliceCalibration(keras.layers.Layer):
    """``(logits [batch, tasks], user_index [batch], item_index [batch]) -> logits``.

    Args:
      num_tasks: logits per example.
      num_users / num_items: sizes of the user-id and item-id vocabularies (index 0 is
        the unknown id).
    """

    def __init__(self, num_tasks: int, num_users: int, num_items: int, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = int(num_tasks)
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.user_log_count = self.add_weight(
            name="user_log_count", shape=(self.num_users,), initializer="zeros", trainable=False
        )
        self.item_log_count = self.add_weight(
            name="item_log_count", shape=(self.num_items,), initializer="zeros", trainable=False
        )
        identity = np.zeros((self.num_tasks, len(TERMS)), np.float32)
        identity[:, 1] = 1.0
        self.weights_per_task = self.add_weight(
            name="weights_per_task",
            shape=identity.shape,
            initializer=keras.initializers.Constant(identity),
            trainable=False,
        )

    def features(
        self, logits: tf.Tensor, user_index: tf.Tensor, item_index: tf.Tensor
    ) -> tf.Tensor:
        """``[batch, tasks, 4]``: the terms the weights multiply (`TERMS` order)."""
        logits = tf.convert_to_tensor(logits, tf.float32)
        per_row = tf.stack(
            [
                tf.gather(self.item_log_count, tf.reshape(item_index, [-1])),
                tf.gather(self.user_log_count, tf.reshape(user_index, [-1])),
            ],
            axis=-1,
        )  # [batch, 2]
        ones = tf.ones_like(logits)
        counts = tf.broadcast_to(per_row[:, None, :], tf.concat([tf.shape(logits), [2]], 0))
        return tf.concat([tf.stack([ones, logits], axis=-1), counts], axis=-1)

    def call(self, logits: tf.Tensor, user_index: tf.Tensor, item_index: tf.Tensor) -> tf.Tensor:
        terms = self.features(logits, user_index, item_index)
        return tf.reduce_sum(terms * self.weights_per_task[None], axis=-1)

    def set_counts(self, user_counts: np.ndarray, item_counts: np.ndarray) -> None:
        """Exposure counts per vocabulary index (``[num_users]``, ``[num_items]``)."""
        self.user_log_count.assign(np.log1p(np.asarray(user_counts, np.float32)))
        self.item_log_count.assign(np.log1p(np.asarray(item_counts, np.float32)))

    def set_task_weights(self, task: int, weights: np.ndarray) -> None:
        """The four fitted weights of ``task`` (`TERMS` order)."""
        values = self.weights_per_task.numpy()
        values[task] = np.asarray(weights, np.float32)
        self.weights_per_task.assign(values)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_users": self.num_users,
            "num_items": self.num_items,
        }
