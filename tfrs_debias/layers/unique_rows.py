"""`UniqueRows`: the distinct rows of a batch by a key, to run a tower once per distinct
input and gather its outputs back.

A batch of impression logs holds each request's slate together: 4096 rows of the
default simulator have ~420 distinct users and ~250 distinct items. A tower that reads
only the user side (or only the item side) gives every row of a user the same output,
so running it on the distinct rows and gathering is the same function at a tenth of the
rows; the gradient of the gather sums each row's gradient into its representative, so
training sees the same gradients too (`BiasTower` does the same per position x device
cell).
"""

from __future__ import annotations

from typing import NamedTuple

from tfrs_debias.backend import tf


class UniqueRows(NamedTuple):
    """``first [n]``: one row of each distinct key; ``position [batch]``: each row's
    distinct key (an index into ``first``)."""

    first: tf.Tensor
    position: tf.Tensor

    @classmethod
    def of(cls, key: tf.Tensor) -> UniqueRows:
        """The distinct values of ``key [batch]`` (int), in order of first appearance."""
        values, position = tf.unique(key, out_idx=tf.int32)
        rows = tf.range(tf.size(key, out_type=tf.int32))
        first = tf.math.unsorted_segment_min(rows, position, tf.size(values, out_type=tf.int32))
        return cls(first, position)

    def take(self, x: tf.Tensor) -> tf.Tensor:
        """``x [batch, ...]`` -> ``[n, ...]``: the representative row of each key."""
        return tf.gather(x, self.first)

    def spread(self, y: tf.Tensor) -> tf.Tensor:
        """``y [n, ...]`` (one row per key) -> ``[batch, ...]``: each row its key's."""
        return tf.gather(y, self.position)
