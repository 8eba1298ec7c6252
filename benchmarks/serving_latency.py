"""Latency of scoring 1 user x 500 candidates: in-process through the loaded
``serving_default`` signature, and over REST (``tfrs-debias serve``) on loopback.

Prints p50/p99 (ms) of each, requests/s of a bounded REST run, and — for scale — the
same in-process figure for a plain TFRS export of the multi-task model (no bias
tower), measured in the same run.

Usage: python benchmarks/serving_latency.py [--requests 2000] [--candidates 500]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data import ImpressionSimulator, SimulatorConfig
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.serving import export_saved_model, make_server
from tfrs_debias.training import train


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def in_process(path: str, features: dict, n: int) -> list[float]:
    fn = tf.saved_model.load(path).signatures["serving_default"]
    tensors = {k: tf.constant(v) for k, v in features.items()}
    for _ in range(50):
        fn(**tensors)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn(**tensors)["score"].numpy()
        times.append(time.perf_counter() - start)
    return times


def rest(base: str, features: dict, n: int) -> tuple[list[float], float]:
    httpd = make_server(base, port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/{httpd.model.name}:predict"
    body = json.dumps({"inputs": {k: v.tolist() for k, v in features.items()}}).encode()
    times = []
    try:
        for i in range(n + 20):
            start = time.perf_counter()
            req = urllib.request.Request(url, data=body, method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
            if i >= 20:
                times.append(time.perf_counter() - start)
    finally:
        httpd.shutdown()
        httpd.server_close()
    return times, n / sum(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rest-requests", type=int, default=300)
    p.add_argument("--candidates", type=int, default=500)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sim = ImpressionSimulator(SimulatorConfig.small(seed=0))
        sim.write(os.path.join(tmp, "data"), progress=False)
        paths = {}
        for name in ("factorized", "multi_task"):
            result = train(
                os.path.join(tmp, "data", "train-*"),
                os.path.join(tmp, name),
                EstimatorConfig(model=name),
                sim.schema,
                epochs=1,
                verbose=0,
                validate="none",
            )
            paths[name] = export_saved_model(result.model, os.path.join(tmp, "models", name))
        n = args.candidates
        rng = np.random.default_rng(0)
        features = {
            "user_id": np.full(n, 7, np.int64),
            "user_segment": np.full(n, 3, np.int64),
            "item_id": rng.choice(sim.config.num_items, n, replace=n > sim.config.num_items).astype(
                np.int64
            ),
            "item_genre": rng.integers(0, sim.config.num_item_genres, n).astype(np.int64),
        }
        ours = percentiles(in_process(paths["factorized"], features, args.requests))
        plain = percentiles(in_process(paths["multi_task"], features, args.requests))
        rest_times, rps = rest(os.path.dirname(paths["factorized"]), features, args.rest_requests)
        rest_p = percentiles(rest_times)
    print(f"1 user x {n} candidates, serving_default")
    print(f"{'path':<44}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'in-process, factorized (ours)':<44}{ours[0]:>9.2f}{ours[1]:>9.2f}")
    print(f"{'in-process, multi-task (plain TFRS ranker)':<44}{plain[0]:>9.2f}{plain[1]:>9.2f}")
    print(f"{'REST :predict on loopback, factorized':<44}{rest_p[0]:>9.2f}{rest_p[1]:>9.2f}")
    print(f"REST: {rps:.0f} requests/s over {args.rest_requests} sequential requests")


if __name__ == "__main__":
    main()
