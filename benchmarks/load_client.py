"""One load-generating client, run as its own process by `serving_latency.py`, so the
client's own Python work (building requests, reading answers) does not share the
server's interpreter — as with a real client or a load tester such as wrk or ghz.

It sends one prepared request body back to back, over one keep-alive HTTP connection
(REST) or one gRPC channel (the body is a serialized ``PredictRequest``, sent as bytes:
no TensorFlow import here), from ``--start`` (a ``time.time()``) for ``--seconds``, after
one warm-up request. It prints one JSON line: each request's start time and latency
(seconds), the failures, and — with ``--versions`` — the ``model_version`` values that
answered (REST).

Usage: python benchmarks/load_client.py rest|grpc --port P --body FILE --start T
       --seconds S [--path /v1/models/NAME:predict] [--versions]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time


def _rest(port: int, path: str, body: bytes, versions: set | None):
    state = {"conn": http.client.HTTPConnection("127.0.0.1", port, timeout=60)}

    def call() -> str | None:
        try:
            state["conn"].request("POST", path, body)
            resp = state["conn"].getresponse()
            payload = resp.read()
        except OSError as err:
            state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            return str(err)
        if resp.status != 200:
            return payload[:200].decode(errors="replace")
        if versions is not None:
            versions.add(json.loads(payload).get("model_version", "?"))
        return None

    return call


def _grpc(port: int, body: bytes):
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")

    def call() -> str | None:
        try:
            predict(body, timeout=60)
        except grpc.RpcError as err:
            return f"{err.code()}: {err.details()}"
        return None

    return call


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("kind", choices=("rest", "grpc"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--body", required=True, help="file holding the request body")
    p.add_argument("--path", default="")
    p.add_argument("--start", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--versions", action="store_true")
    args = p.parse_args(argv)
    with open(args.body, "rb") as fh:
        body = fh.read()
    versions: set | None = set() if args.versions else None
    call = _rest(args.port, args.path, body, versions) if args.kind == "rest" else None
    call = call or _grpc(args.port, body)
    warm_up = call()
    starts, latencies, failures = [], [], []
    time.sleep(max(0.0, args.start - time.time()))
    stop = args.start + args.seconds
    while (now := time.time()) < stop:
        begin = time.perf_counter()
        failure = call()
        latencies.append(time.perf_counter() - begin)
        starts.append(now)
        if failure is not None:
            failures.append(failure)
    json.dump(
        {
            "starts": starts,
            "latencies": latencies,
            "failures": failures,
            "warm_up_failure": warm_up,
            "versions": sorted(versions or ()),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
