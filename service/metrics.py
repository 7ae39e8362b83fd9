"""Prometheus metrics, one registry per app so that apps (and tests) do not share counters."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "voiceid_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "voiceid_request_latency_seconds", "Request latency by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.predictions = Counter(
            "voiceid_predictions", "Clips answered, by predicted speaker",
            ["speaker"], registry=self.registry,
        )  # fmt: skip
        self.unknown = Counter(
            "voiceid_unknown", "Clips whose top score was below the threshold",
            registry=self.registry,
        )  # fmt: skip

    def count_prediction(self, speaker: str, unknown: bool) -> None:
        self.predictions.labels(speaker=speaker).inc()
        if unknown:
            self.unknown.inc()

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # The route template, not the raw path, so label values stay few.
            name = getattr(route, "path", "unmatched")
            self.requests.labels(route=name, method=request.method, status=str(status)).inc()
            self.latency.labels(route=name).observe(time.perf_counter() - started)
