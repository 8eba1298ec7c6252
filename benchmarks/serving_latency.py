"""Latency of scoring 1 user x 500 candidates: in-process through the loaded
``serving_default`` signature, and over REST (``tfrs-debias serve``) on loopback.

Prints p50/p99 (ms) of each, requests/s of a bounded REST run, and — for scale — the
same in-process figure for a plain TFRS export of the multi-task model (no bias
tower), measured in the same run. Then concurrency: 1, 8 and 32 clients each sending
requests back to back (keep-alive HTTP connections, one gRPC channel each) against the
same server, with requests/s and p50/p99, and in-process calls from as many threads,
in one run; REST and gRPC throughput are reported as a share of in-process. Each REST
or gRPC client is its own process (`load_client.py`), as a real client is: its Python
work does not share the server's interpreter.

Then hot reload: REST clients keep sending to a `tfrs-debias serve` process (as users
run it) while three new versions are moved in and the newest is replaced in place (a
--force re-export): failed requests, and the slowest request against the p99 before any
change (target: no failure, <= 3x).

Usage: python benchmarks/serving_latency.py [--requests 2000] [--candidates 500]
       [--clients 1 8 32] [--seconds 5] [--reload-clients 4] [--only-reload] [--no-freeze]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
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


def concurrent(call, clients: int, seconds: float) -> tuple[float, float, float]:
    """``clients`` threads calling ``call(worker)`` back to back for ``seconds``:
    (requests/s, p50 ms, p99 ms)."""
    times: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        state = {}
        local = []
        call(state, index)  # warm-up / connect
        while time.perf_counter() < stop:
            start = time.perf_counter()
            call(state, index)
            local.append(time.perf_counter() - start)
        with lock:
            times.extend(local)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    p50, p99 = percentiles(times)
    return len(times) / elapsed, p50, p99


def run_clients(
    kind: str,
    port: int,
    body: bytes,
    clients: int,
    seconds: float,
    path: str = "",
    versions: bool = False,
    during=None,
) -> list[dict]:
    """``clients`` load-client processes (`load_client.py`) sending ``body`` back to
    back for ``seconds`` from a common start; ``during(start)`` runs here meanwhile (a
    hot reload). Returns each client's record (start times, latencies, failures)."""
    with tempfile.NamedTemporaryFile(suffix=".body", delete=False) as fh:
        fh.write(body)
    start = time.time() + 2.0 + 0.1 * clients  # time for every client to connect
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_client.py")
    cmd = [sys.executable, script, kind, "--port", str(port), "--body", fh.name]
    cmd += ["--start", repr(start), "--seconds", str(seconds), "--path", path]
    cmd += ["--versions"] if versions else []
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE) for _ in range(clients)]
    try:
        if during is not None:
            during(start)
        outs = [proc.communicate(timeout=seconds + 120)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
        os.unlink(fh.name)
    return [json.loads(out) for out in outs]


def summarise(records: list[dict], seconds: float) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) over every client's requests."""
    times = [t for r in records for t in r["latencies"]]
    p50, p99 = percentiles(times)
    return len(times) / seconds, p50, p99


def concurrency(
    base: str, path: str, features: dict, clients_list, seconds: float, batch_rows: int
) -> list:
    """Requests/s and p50/p99 at each client count: in-process calls from as many
    threads, then REST and gRPC clients, each its own process (`load_client.py`)."""
    from tensorflow_serving.apis import predict_pb2

    from tfrs_debias.serving.grpc_service import make_grpc_server

    fn = tf.saved_model.load(path).signatures["serving_default"]
    tensors = {k: tf.constant(v) for k, v in features.items()}
    httpd = make_server(base, port=0, workers=64, batch_rows=batch_rows)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    grpc_server, grpc_port = make_grpc_server(httpd.models, port=0, workers=64)
    port = httpd.server_address[1]
    name = httpd.model.name
    # As `tfrs-debias serve` does once its versions are loaded: what is alive now is
    # taken out of the garbage collector's scans (else every full collection walks this
    # benchmark's own loaded models too, a pause no server process has).
    gc.collect()
    gc.freeze()
    body = json.dumps({"inputs": {k: v.tolist() for k, v in features.items()}}).encode()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for k, v in features.items():
        request.inputs[k].CopyFrom(tf.make_tensor_proto(v))

    def local(state, index):
        fn(**tensors)["score"].numpy()

    rows = []
    try:
        for clients in clients_list:
            base_rps, *base_p = concurrent(local, clients, seconds)
            rows.append((clients, "in-process", base_rps, *base_p, 1.0))
            for label, kind, port_, payload in (
                ("REST", "rest", port, body),
                ("gRPC", "grpc", grpc_port, request.SerializeToString()),
            ):
                records = run_clients(
                    kind, port_, payload, clients, seconds, path=f"/v1/models/{name}:predict"
                )
                failed = sum(len(r["failures"]) for r in records)
                if failed:
                    print(f"{label} at {clients} clients: {failed} failed requests", flush=True)
                rps, p50, p99 = summarise(records, seconds)
                rows.append((clients, label, rps, p50, p99, rps / base_rps))
    finally:
        grpc_server.stop(grace=None)
        httpd.shutdown()
        httpd.server_close()
        gc.unfreeze()
    return rows


def start_serve(base: str, freeze: bool = True) -> tuple[subprocess.Popen, int]:
    """``tfrs-debias serve`` on ``base`` (REST only, an ephemeral port, polling every
    0.2 s) as its own process, as users run it, and the port it listens on. Without
    ``freeze`` the process runs with ``gc.freeze`` made a no-op (what serve did before
    it froze its startup objects)."""
    code = (
        "import gc, sys\n"
        + ("" if freeze else "gc.freeze = lambda: None\n")
        + "from tfrs_debias.cli import main\nsys.exit(main())"
    )
    cmd = [sys.executable, "-c", code, "serve", "--model-base", base, "--port", "0"]
    cmd += ["--no-grpc", "--poll-seconds", "0.2", "--workers", "64"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        text = line.decode()
        if text.startswith("REST at http://"):
            return proc, int(text.split("/")[2].rsplit(":", 1)[1])
    raise RuntimeError(f"tfrs-debias serve exited ({proc.wait()}) before it listened")


def hot_reload(
    base: str,
    staged: list[str],
    features: dict,
    clients: int,
    seconds: float,
    freeze: bool = True,
) -> dict:
    """``clients`` keep-alive REST clients (each its own process) send requests back to
    back to a ``tfrs-debias serve`` process on ``base`` for ``seconds`` before any change
    (the baseline), then while the ``staged`` export folders are moved in one by one as
    new versions (an export's atomic rename) and, last, one replaces the newest version
    in place (a ``--force`` re-export). Returns failures (any non-200 or error), the
    baseline p99 and the largest latency while versions were switching."""
    proc, port = start_serve(base, freeze)
    name = os.path.basename(base.rstrip("/"))
    body = json.dumps({"inputs": {k: v.tolist() for k, v in features.items()}}).encode()
    switch = {}

    def reload(start: float) -> None:
        time.sleep(max(0.0, start + seconds - time.time()))
        switch["at"] = time.time()
        newest = None
        for folder in staged:
            version = max(int(v) for v in os.listdir(base) if v.isdigit()) + 1
            newest = os.path.join(base, str(version))
            os.rename(folder, newest)
            time.sleep(seconds / max(len(staged), 1))
        if newest is not None and staged:  # a --force re-export of the newest version
            replacement = staged[0] + "-force"
            # New files, as an export writes them (copytree's default copy2 would keep
            # the modification times, and the server would rightly see no change).
            shutil.copytree(newest, replacement, copy_function=shutil.copyfile)
            old = newest + "-old"
            os.rename(newest, old)
            os.rename(replacement, newest)
            shutil.rmtree(old)

    try:
        records = run_clients(
            "rest", port, body, clients, 3 * seconds, f"/v1/models/{name}:predict", True, reload
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    samples: dict[str, list[float]] = {"baseline": [], "reload": []}
    for r in records:
        for begin, latency in zip(r["starts"], r["latencies"], strict=True):
            samples["baseline" if begin < switch["at"] else "reload"].append(latency)
    failures = [f for r in records for f in r["failures"]]
    base_p99 = percentiles(samples["baseline"])[1]
    worst = max(samples["reload"]) * 1000 if samples["reload"] else 0.0
    return {
        "requests": sum(len(v) for v in samples.values()),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "baseline_p99_ms": base_p99,
        "reload_p99_ms": percentiles(samples["reload"])[1],
        "reload_max_ms": worst,
        "max_over_baseline_p99": worst / base_p99,
        "versions_answered": sorted({v for r in records for v in r["versions"]}),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rest-requests", type=int, default=300)
    p.add_argument("--candidates", type=int, default=500)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    p.add_argument(
        "--reload-clients", type=int, default=4, help="clients during the hot-reload phase"
    )
    p.add_argument("--only-reload", action="store_true", help="run only the hot-reload phase")
    p.add_argument(
        "--no-freeze",
        action="store_true",
        help="hot reload with the server's gc.freeze turned off (as serve was before)",
    )
    p.add_argument(
        "--batch-rows",
        type=int,
        default=8192,
        help="the server's batching limit in the concurrency runs (0: no batching)",
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sim = ImpressionSimulator(SimulatorConfig.small(seed=0))
        sim.write(os.path.join(tmp, "data"), progress=False)
        paths, models = {}, {}
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
            models[name] = result.model
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
        # Three more versions staged outside the model base, moved in during the load.
        staged = []
        for i in range(3):
            folder = os.path.join(tmp, "staged", str(i))
            export_saved_model(models["factorized"], folder)
            staged.append(os.path.join(folder, "1"))
        reload = hot_reload(
            os.path.dirname(paths["factorized"]),
            staged,
            features,
            args.reload_clients,
            args.seconds,
            freeze=not args.no_freeze,
        )
        print(
            f"hot reload, {args.reload_clients} REST clients, 3 new versions and a --force "
            f"re-export: {reload['requests']} requests, {reload['failures']} failed; "
            f"p99 before {reload['baseline_p99_ms']:.1f} ms, during {reload['reload_p99_ms']:.1f} "
            f"ms, slowest {reload['reload_max_ms']:.1f} ms = "
            f"{reload['max_over_baseline_p99']:.1f}x the p99 before (target <= 3x); versions "
            f"answered {reload['versions_answered']}",
            flush=True,
        )
        if reload["first_failure"]:
            print(f"first failure: {reload['first_failure']}")
        if args.only_reload:
            return
        ours = percentiles(in_process(paths["factorized"], features, args.requests))
        plain = percentiles(in_process(paths["multi_task"], features, args.requests))
        rest_times, rps = rest(os.path.dirname(paths["factorized"]), features, args.rest_requests)
        rest_p = percentiles(rest_times)
        rows = concurrency(
            os.path.dirname(paths["factorized"]),
            paths["factorized"],
            features,
            args.clients,
            args.seconds,
            args.batch_rows,
        )
    print(f"1 user x {n} candidates, serving_default")
    print(f"{'path':<44}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'in-process, factorized (ours)':<44}{ours[0]:>9.2f}{ours[1]:>9.2f}")
    print(f"{'in-process, multi-task (plain TFRS ranker)':<44}{plain[0]:>9.2f}{plain[1]:>9.2f}")
    print(f"{'REST :predict on loopback, factorized':<44}{rest_p[0]:>9.2f}{rest_p[1]:>9.2f}")
    print(f"REST: {rps:.0f} requests/s over {args.rest_requests} sequential requests")
    print(f"\nconcurrency, server-side batching up to {args.batch_rows} rows (0: off)")
    print(
        f"{'clients':>8}  {'path':<11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs in-process':>15}"
    )
    for clients, label, rps_, p50, p99, share in rows:
        print(f"{clients:>8}  {label:<11}{rps_:>9.0f}{p50:>9.2f}{p99:>9.2f}{share:>14.0%}")


if __name__ == "__main__":
    main()
