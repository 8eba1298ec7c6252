"""`SessionSignature`: one signature of a version loaded into a session
(`SessionServable`), as a numpy function ``run({input: array}) -> {output: array}``.

It has the ``structured_input_signature`` / ``structured_outputs`` of a loaded concrete
function (``TensorSpec`` s built from the ``SignatureDef``), so the server reads its
inputs' names, dtypes and shapes the same way whichever loader made it. Each call goes
through one ``Session.make_callable`` (feeds and fetches fixed once); the session
releases the interpreter while it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrs_debias.backend import tf


def _spec(info: Any, name: str) -> tf.TensorSpec:
    """A `tf.TensorSpec` from a ``SignatureDef``'s ``TensorInfo``."""
    shape = tf.TensorShape(None if info.tensor_shape.unknown_rank else info.tensor_shape)
    return tf.TensorSpec(shape, tf.dtypes.as_dtype(info.dtype), name=name)


class SessionSignature:
    """One signature of a `SessionServable`: ``run({input: array}) -> {output: array}``.

    Args:
      session: the version's session.
      signature_def: the signature's ``SignatureDef`` proto.
    """

    def __init__(self, session: Any, signature_def: Any):
        inputs, outputs = signature_def.inputs, signature_def.outputs
        self.structured_input_signature = ((), {k: _spec(inputs[k], k) for k in sorted(inputs)})
        self.structured_outputs = {k: _spec(outputs[k], k) for k in sorted(outputs)}
        self._input_names = tuple(sorted(inputs))
        self._output_names = tuple(sorted(outputs))
        self._numpy_dtypes = {
            k: spec.dtype.as_numpy_dtype if spec.dtype != tf.string else object
            for k, spec in self.structured_input_signature[1].items()
        }
        # A callable fixes the feeds and fetches once (no per-call name lookups).
        self._callable = session.make_callable(
            [outputs[k].name for k in self._output_names],
            [inputs[k].name for k in self._input_names],
        )

    def run(self, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The outputs for ``arrays`` (every input of the signature, by name; values
        are cast to the input's dtype).

        Raises:
          KeyError: an input is missing.
          tf.errors.InvalidArgumentError: the graph rejects the values (shapes, ids...).
        """
        missing = [k for k in self._input_names if k not in arrays]
        if missing:
            raise KeyError(f"missing signature inputs {missing}")
        feeds = [np.asarray(arrays[k], dtype=self._numpy_dtypes[k]) for k in self._input_names]
        values = self._callable(*feeds)
        return dict(zip(self._output_names, values, strict=True))
