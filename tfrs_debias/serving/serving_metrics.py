"""`ServingMetrics`: Prometheus metrics of a server (its own registry, so servers in one
process do not mix): requests by model, API, verb and status code, a latency histogram,
and the state of every version, scraped from ``/monitoring/prometheus/metrics`` (TF
Serving's path)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

#: Latency buckets in seconds, 0.5 ms to 5 s.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _VersionStates:
    """Collects ``tfrs_debias_model_version_available`` from the model managers at
    scrape time (1 for an available version, 0 for one loading or broken)."""

    def __init__(self, models: dict):
        self.models = models

    def collect(self):
        gauge = GaugeMetricFamily(
            "tfrs_debias_model_version_available",
            "1 if the version is loaded and served, 0 if loading or failed",
            labels=["model", "version", "state"],
        )
        for name, model in self.models.items():
            for s in model.manager.states():
                gauge.add_metric([name, str(s.version), s.state], 1.0 if s.servable else 0.0)
        yield gauge


class ServingMetrics:
    """Counters and histograms for one server's requests (REST and gRPC)."""

    def __init__(self, models: dict):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tfrs_debias_requests",
            "Requests answered, by model, API, verb and status code",
            ["model", "api", "verb", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tfrs_debias_request_latency_seconds",
            "Time to answer a request",
            ["model", "api", "verb"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_VersionStates(models))

    def observe(self, model: str, api: str, verb: str, code: str, seconds: float) -> None:
        self.requests.labels(model, api, verb, code).inc()
        self.latency.labels(model, api, verb).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
