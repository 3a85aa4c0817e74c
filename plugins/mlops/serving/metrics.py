"""The serving service's Prometheus metrics, in a registry of their own.

A private ``CollectorRegistry`` rather than the process-wide default: two services in one process
(the tests) do not share counts, and ``/metrics`` shows these and nothing a library registered.
Names are a contract (dashboards and alerts read them; see docs/serving.md).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds; single rows answer in milliseconds, a 10 000-row body in about a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOAD_OUTCOMES = ("loaded", "unverified", "failed")
NO_VERSION = "none"  # the model_version label of a request answered before any champion was loaded


class ServingMetrics:
    """Request counts and latency, rows scored, champion loads and the version in force."""

    def __init__(self, pipelines: list[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlops_serving_requests",
            "Prediction requests answered, by pipeline, model version and HTTP status.",
            ["pipeline", "model_version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlops_serving_request_seconds",
            "Time to answer a prediction request (read, check, score, log), in seconds.",
            ["pipeline", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "mlops_serving_rows",
            "Rows scored, by pipeline and model version.",
            ["pipeline", "model_version"],
            registry=self.registry,
        )
        self.loads = Counter(
            "mlops_serving_model_loads",
            "Champion loads: loaded, refused by signature verification (unverified), or failed.",
            ["pipeline", "outcome"],
            registry=self.registry,
        )
        self.version = Gauge(
            "mlops_serving_model_version",
            "The champion version in force (0 before the first one is loaded).",
            ["pipeline"],
            registry=self.registry,
        )
        self.logged = Counter(
            "mlops_serving_logged_rows",
            "Answered rows kept for the lake's served zone: committed, or dropped (buffer full).",
            ["pipeline", "outcome"],
            registry=self.registry,
        )
        for pipeline in pipelines:  # every series exists from the start: a rate() needs its zero
            self.version.labels(pipeline).set(0)
            for outcome in LOAD_OUTCOMES:
                self.loads.labels(pipeline, outcome)
            for outcome in ("committed", "dropped"):
                self.logged.labels(pipeline, outcome)

    def answered(self, pipeline: str, version: str | None, status: int, seconds: float, rows: int) -> None:
        label = version or NO_VERSION
        self.requests.labels(pipeline, label, str(status)).inc()
        self.latency.labels(pipeline, label).observe(seconds)
        if rows:
            self.rows.labels(pipeline, label).inc(rows)

    def loaded(self, pipeline: str, outcome: str, version: str | None = None) -> None:
        self.loads.labels(pipeline, outcome).inc()
        if outcome == "loaded" and version is not None:
            self.version.labels(pipeline).set(float(version))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
