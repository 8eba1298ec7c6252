"""`ExaminationLogger`: the examination curve a model's bias part has learned, logged to
TensorBoard at every epoch, so a user sees while training what the bias tower absorbs
(and whether it settles) instead of only after `evaluate`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tfrs_debias.backend import keras, tf
from tfrs_debias.data.io.reader import make_dataset
from tfrs_debias.metrics.examination import examination_probabilities, rank_and_context
from tfrs_debias.schema import Feature, ImpressionSchema


class ExaminationLogger(keras.callbacks.Callback):
    """After each epoch, the learned examination ``P(click | rank r) / P(click | rank 0)``
    of task ``task_index`` per context value, over fixed sample rows, as TensorBoard
    scalars ``examination/<context>/rank_<r>`` and a plot (image ``examination/curves``)
    under ``log_dir``; the last curves are in
    ``curves`` (``{context: [num_ranks]}``).

    Args:
      pairs: sample rows (numpy columns of every feature the training path reads); their
        rank and context are overwritten with each value in turn.
      rank, context: the bias features the curve is drawn over (`rank_and_context`).
      contexts: context values to draw (e.g. the most frequent devices).
      num_ranks: ranks 0 .. num_ranks - 1.
      log_dir: TensorBoard folder (a writer of its own: ``examination`` inside it).
    """

    def __init__(
        self,
        pairs: dict[str, np.ndarray],
        rank: Feature,
        context: Feature | None,
        contexts: Sequence,
        num_ranks: int,
        log_dir: str,
        task_index: int = 0,
    ):
        super().__init__()
        self.pairs = pairs
        self.rank, self.context = rank, context
        self.contexts = list(contexts) if context is not None else ["all"]
        self.num_ranks = num_ranks
        self.log_dir = os.path.join(log_dir, "examination")
        self.task_index = task_index
        self.curves: dict[str, list[float]] = {}
        self._writer = None

    def _probabilities(self, features: dict) -> np.ndarray:
        tensors = {k: tf.constant(v) for k, v in features.items()}
        return self.model.task_values(self.model(tensors, training=False)).numpy()

    def on_epoch_end(self, epoch, logs=None):
        probs = examination_probabilities(
            self._probabilities,
            self.pairs,
            self.rank,
            self.context,
            self.contexts,
            self.num_ranks,
            self.task_index,
        )
        means = probs.mean(axis=2)
        curves = means / np.maximum(means[:, :1], 1e-12)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            for name, curve in zip(self.contexts, curves, strict=True):
                label = str(name)
                self.curves[label] = [float(v) for v in curve]
                for r, value in enumerate(curve):
                    tf.summary.scalar(f"examination/{label}/rank_{r:02d}", value, step=epoch)
            tf.summary.image("examination/curves", self._image(epoch), step=epoch)
        self._writer.flush()

    def _image(self, epoch: int) -> tf.Tensor:
        """The curves as one ``[1, H, W, 4]`` PNG image (TensorBoard's Images tab)."""
        import io

        from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

        fig = Figure(figsize=(5, 3.2))
        ax = fig.subplots()
        for label, curve in self.curves.items():
            ax.plot(range(len(curve)), curve, "o-", ms=3, label=label)
        ax.set_xlabel(self.rank.name)
        ax.set_ylabel("P(click | rank) / P(click | rank 0)")
        ax.set_title(f"learned examination, epoch {epoch + 1}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return tf.image.decode_png(buffer.getvalue(), channels=4)[None]

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def examination_logger(
    model,
    files: Sequence[str],
    schema: ImpressionSchema,
    vocabularies: dict,
    run_dir: str,
    rows: int = 256,
    max_ranks: int = 20,
) -> ExaminationLogger | None:
    """An `ExaminationLogger` over the first ``rows`` training records for a model with
    a bias part and a rank feature (None otherwise): ranks from the schema's range or
    the values seen in training (at most ``max_ranks``), the 3 most frequent contexts."""
    rank, context = rank_and_context(schema)
    if not model.has_bias_part or rank is None:
        return None
    if rank.num_values is not None:
        num_ranks = rank.num_values
    else:
        seen = [int(v) for v in vocabularies.get(rank.name, []) if int(v) >= 0]
        num_ranks = max(seen) + 1 if seen else 0
    num_ranks = min(num_ranks, max_ranks)
    if num_ranks < 2:
        return None
    contexts: list = []
    if context is not None:
        contexts = list(vocabularies.get(context.name) or context.vocabulary or [])[:3]
        if not contexts:
            return None
    sample = next(iter(make_dataset(files, schema, rows, shuffle=False, check=False)))
    pairs = {k: v.numpy() for k, v in sample.items() if k not in schema.tasks}
    return ExaminationLogger(
        pairs, rank, context, contexts, num_ranks, os.path.join(run_dir, "logs")
    )
