import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.serving.session_signature import SessionSignature


def _signature():
    """``y = 2·x + w`` (float32) and ``n = size(x)`` (int32) over a row of int64 ids."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.int64, [None], name="x")
        w = tf.compat.v1.placeholder(tf.float32, [None], name="w")
        y = tf.cast(2 * x, tf.float32) + w
        n = tf.size(x)
        info = tf.compat.v1.saved_model.utils.build_tensor_info
        signature_def = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"x": info(x), "w": info(w)}, outputs={"y": info(y), "n": info(n)}
        )
    return SessionSignature(tf.compat.v1.Session(graph=graph), signature_def)


def test_run_feeds_by_name_casts_and_fetches_every_output():
    fn = _signature()
    out = fn.run({"x": [1, 2, 3], "w": np.array([0.5, 0.0, -1.0], np.float64)})
    np.testing.assert_array_equal(out["y"], np.array([2.5, 4.0, 5.0], np.float32))
    assert out["y"].dtype == np.float32 and int(out["n"]) == 3
    specs = fn.structured_input_signature[1]
    assert specs == {
        "w": tf.TensorSpec([None], tf.float32, name="w"),
        "x": tf.TensorSpec([None], tf.int64, name="x"),
    }
    assert fn.structured_outputs["n"] == tf.TensorSpec([], tf.int32, name="n")


def test_a_missing_input_is_named_and_a_bad_one_is_the_graphs_error():
    fn = _signature()
    with pytest.raises(KeyError, match=r"missing signature inputs \['w'\]"):
        fn.run({"x": [1]})
    with pytest.raises(tf.errors.InvalidArgumentError, match="Incompatible shapes"):
        fn.run({"x": [1, 2], "w": [0.0, 0.0, 0.0]})
