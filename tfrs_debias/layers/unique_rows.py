"""`UniqueRows`: the distinct rows of a batch by a key, to run a tower once per distinct
input and gather its outputs back.

A batch of impression logs holds each request's slate together: 4096 rows of the
default simulator have ~420 distinct users and ~250 distinct items. A tower that reads
only the user side (or only the item side) gives every row of a user the same output,
so running it on the distinct rows and gathering is the same function at a tenth of the
rows; the gradient of the gather sums each row's gradient into its representative, so
training sees the same gradients too (`BiasTower` does the same per position x device
cell).

A small embedding table is the other case (`of_table`): a feature with fewer values
than the embedding is wide enters a dense layer as ``one_hot(index) @ (table @ W)``,
the same product in fewer multiply-adds than ``table[index] @ W``.
"""

from __future__ import annotations

from typing import NamedTuple

from tfrs_debias.backend import tf


class UniqueRows(NamedTuple):
    """``first [n]``: one row of each distinct key; ``position [batch]``: each row's
    distinct key (an index into ``first``); ``size``: the static number of keys of a
    table (`of_table`, where ``first`` is None), else None."""

    first: tf.Tensor | None
    position: tf.Tensor
    size: int | None = None

    @classmethod
    def of(cls, key: tf.Tensor) -> UniqueRows:
        """The distinct values of ``key [batch]`` (int), in order of first appearance."""
        values, position = tf.unique(key, out_idx=tf.int32)
        rows = tf.range(tf.size(key, out_type=tf.int32))
        first = tf.math.unsorted_segment_min(rows, position, tf.size(values, out_type=tf.int32))
        return cls(first, position)

    @classmethod
    def of_table(cls, index: tf.Tensor, size: int) -> UniqueRows:
        """The rows of a table of ``size`` rows that ``index [batch]`` (int) picks: the
        keys are the table's rows, every one of them (a block over this is the whole
        table), and `spread` is the product with `one_hot`."""
        return cls(None, tf.cast(index, tf.int32), int(size))

    def one_hot(self, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """``[batch, size]``: 1 at each row's key (`of_table` rows only)."""
        if self.size is None:
            raise ValueError("one_hot needs the static size of `of_table` rows")
        return tf.one_hot(self.position, self.size, dtype=dtype)

    def take(self, x: tf.Tensor) -> tf.Tensor:
        """``x [batch, ...]`` -> ``[n, ...]``: the representative row of each key."""
        if self.first is None:
            raise ValueError("the rows of a table (`of_table`) have no representative row")
        return tf.gather(x, self.first)

    def spread(self, y: tf.Tensor) -> tf.Tensor:
        """``y [n, ...]`` (one row per key) -> ``[batch, ...]``: each row its key's (a
        gather; for `of_table` rows of a ``[size, d]`` ``y``, the product with
        `one_hot`, whose gradient is a matmul rather than a segment sum)."""
        if self.size is not None and y.shape.rank == 2:
            return tf.matmul(self.one_hot(y.dtype), y)
        return tf.gather(y, self.position)
