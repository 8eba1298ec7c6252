import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from tfrs_debias.serving.request_batcher import RequestBatcher, is_row_wise

SPECS = {
    "x": tf.TensorSpec([None], tf.int64, name="x"),
    "w": tf.TensorSpec([None], tf.float32, name="w"),
}


class _Signature:
    """A stand-in for a loaded signature: ``y = 10·x + w`` and ``x2 = 2·x`` per row. The
    first call blocks until ``release`` is set, so the requests sent meanwhile queue up;
    every call's row counts are recorded; a negative ``x`` is an invalid argument."""

    structured_input_signature = ((), SPECS)
    structured_outputs = {
        "y": tf.TensorSpec([None], tf.float32),
        "x2": tf.TensorSpec([None], tf.int64),
    }

    def __init__(self, rows_out=None):
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[int] = []
        self.rows_out = rows_out

    def __call__(self, x, w):
        self.started.set()
        self.release.wait(10)
        self.calls.append(int(x.shape[0]))
        if bool(tf.reduce_any(x < 0)):
            raise tf.errors.InvalidArgumentError(None, None, "x must be >= 0")
        y = tf.cast(10 * x, tf.float32) + w
        if self.rows_out is not None:
            y = y[: self.rows_out]
        return {"y": y, "x2": 2 * x}

    def run(self, arrays):  # the `SessionSignature` interface the batcher calls
        out = self(**{k: tf.constant(v, SPECS[k].dtype) for k, v in arrays.items()})
        return {k: v.numpy() for k, v in out.items()}


def _request(i: int, rows: int) -> dict[str, np.ndarray]:
    x = np.arange(rows, dtype=np.int64) + 100 * i
    return {"x": x, "w": np.full(rows, 0.5 * i, np.float32)}


def _send_all(batcher, fn, requests):
    """Sends the first request, waits until its call has started (and blocks), sends
    the others from their own threads, waits until all are queued, releases the
    first call; returns each request's outputs or error."""
    results: list = [None] * len(requests)

    def send(i):
        try:
            results[i] = batcher(requests[i])
        except Exception as err:  # noqa: BLE001 - the test inspects it
            results[i] = err

    threads = [threading.Thread(target=send, args=(0,))]
    threads[0].start()
    assert fn.started.wait(10)
    for i in range(1, len(requests)):
        threads.append(threading.Thread(target=send, args=(i,)))
        threads[-1].start()
    deadline = time.time() + 10
    while len(batcher._queue) < len(requests) - 1 and time.time() < deadline:
        time.sleep(0.01)
    fn.release.set()
    for t in threads:
        t.join(10)
    return results


def test_queued_requests_share_one_call_and_get_their_own_rows():
    fn = _Signature()
    batcher = RequestBatcher(fn, max_rows=1000)
    requests = [_request(i, rows) for i, rows in enumerate([3, 1, 4, 1, 5])]
    results = _send_all(batcher, fn, requests)
    # The first request ran alone; the four that queued meanwhile ran as one call of
    # 1 + 4 + 1 + 5 = 11 rows.
    assert fn.calls == [3, 11]
    assert (batcher.calls, batcher.requests) == (2, 5)
    for i, (req, out) in enumerate(zip(requests, results, strict=True)):
        np.testing.assert_array_equal(out["x2"], 2 * req["x"])
        np.testing.assert_allclose(out["y"], 10 * req["x"] + 0.5 * i)


def test_max_rows_splits_the_queue_in_order():
    fn = _Signature()
    batcher = RequestBatcher(fn, max_rows=6)
    requests = [_request(i, rows) for i, rows in enumerate([2, 4, 2, 3, 7, 1])]
    _send_all(batcher, fn, requests)
    # Queue after the first call: 4, 2, 3, 7, 1 -> [4, 2] = 6; [3] (3 + 7 > 6); [7]
    # alone (one request over the limit still runs); [1].
    assert fn.calls == [2, 6, 3, 7, 1]


def test_a_bad_request_fails_alone():
    fn = _Signature()
    batcher = RequestBatcher(fn)
    requests = [_request(i, 2) for i in range(4)]
    requests[2]["x"] = np.array([5, -1], np.int64)
    results = _send_all(batcher, fn, requests)
    assert isinstance(results[2], tf.errors.InvalidArgumentError)
    for i in (0, 1, 3):
        np.testing.assert_array_equal(results[i]["x2"], 2 * requests[i]["x"])
    # First call alone, then the batch of three failed and was retried one by one.
    assert fn.calls == [2, 6, 2, 2, 2]


def test_outputs_not_one_row_per_input_row_are_not_split():
    fn = _Signature(rows_out=1)  # "y" keeps one row whatever the batch
    batcher = RequestBatcher(fn)
    requests = [_request(i, 2) for i in range(3)]
    results = _send_all(batcher, fn, requests)
    assert fn.calls == [2, 4, 2, 2]  # the batch of two was run again one by one
    for i in range(3):
        np.testing.assert_allclose(results[i]["y"], [10 * requests[i]["x"][0] + 0.5 * i])


def test_worker_exits_when_idle_and_comes_back():
    fn = _Signature()
    fn.release.set()
    batcher = RequestBatcher(fn, idle_seconds=0.05)
    np.testing.assert_array_equal(batcher(_request(0, 2))["x2"], [0, 2])
    time.sleep(0.5)
    assert batcher._alive == 0
    np.testing.assert_array_equal(batcher(_request(1, 1))["x2"], [200])


def test_row_wise_signatures_and_inputs():
    assert is_row_wise(_Signature())
    scalar = _Signature()
    scalar.structured_input_signature = ((), {**SPECS, "k": tf.TensorSpec([], tf.int32)})
    assert not is_row_wise(scalar)
    assert RequestBatcher.rows({"a": np.zeros(3), "b": np.zeros(3)}) == 3
    assert RequestBatcher.rows({"a": np.zeros(3), "b": np.zeros(2)}) is None
    assert RequestBatcher.rows({"a": np.zeros(3), "k": np.int32(2)}) is None
    with pytest.raises(ValueError, match="share their first dimension"):
        RequestBatcher(_Signature())({"x": np.zeros(3, np.int64), "w": np.zeros(2, np.float32)})
