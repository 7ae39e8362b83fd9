"""Prometheus metrics, one registry per app so that apps (and tests) do not share counters."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "voiceid_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "voiceid_request_latency_seconds",
            "Request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "voiceid_predictions",
            "Clips answered, by predicted speaker",
            ["speaker"],
            registry=self.registry,
        )
        self.unknown = Counter(
            "voiceid_unknown",
            "Clips whose top score was below the threshold",
            registry=self.registry,
        )
        self._speakers: dict[str, Counter] = {}

    def count_prediction(self, speaker: str, unknown: bool) -> None:
        # Each speaker's counter looked up once (bounded by the labels of the bundles served):
        # label lookups in prometheus-client cost more than the increments themselves.
        counter = self._speakers.get(speaker)
        if counter is None:
            counter = self._speakers[speaker] = self.predictions.labels(speaker=speaker)
        counter.inc()
        if unknown:
            self.unknown.inc()


class MetricsMiddleware:
    """Counts every HTTP request by route template and status, and times it.

    Plain ASGI rather than ``BaseHTTPMiddleware``, which costs a task and a stream per request.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._cache: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # The route template, not the raw path, so label values stay few.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.record(route, scope["method"], status, time.perf_counter() - started)

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request to ``route`` (its template) answered with ``status``, and time it."""
        count, latency = self._series(route, method, status)
        count.inc()
        latency.observe(seconds)

    def _series(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram for these labels, looked up once: label
        lookups in prometheus-client cost more than the increments themselves."""
        key = (route, method, status)
        series = self._cache.get(key)
        if series is None:
            m = self.metrics
            series = (
                m.requests.labels(route=route, method=method, status=str(status)),
                m.latency.labels(route=route),
            )
            # Bounded anyway: routes are templates, httptools takes only standard methods.
            if len(self._cache) < 1024:
                self._cache[key] = series
        return series
