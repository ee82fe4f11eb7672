"""Prometheus metrics of the API, in a registry owned by each app (no process-global collectors)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the 25 ms p99 target, up to slow exports.
_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
_UNMATCHED = "<unmatched>"


@dataclass(frozen=True)
class ApiMetrics:
    """The collectors of one app."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> ApiMetrics:
        """Fresh collectors in a fresh registry."""
        registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        return cls(
            registry=registry,
            requests=Counter("api_requests", "API requests answered.", labels, registry=registry),
            latency=Histogram(
                "api_request_duration_seconds",
                "Time from request to the last byte of the response.",
                labels,
                buckets=_BUCKETS,
                registry=registry,
            ),
        )


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (bounded label values) and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, observing the status and the time to the end of the body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observing)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or _UNMATCHED
            labels = (scope["method"], template, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
