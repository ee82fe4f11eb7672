"""Prometheus metrics of the poller, on a registry the entry point builds (nothing at import time)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class PollerMetrics:
    """Every metric the poller exports."""

    registry: CollectorRegistry
    allegro_requests: Counter
    allegro_latency: Histogram
    rate_limited: Counter
    budget_used: Gauge
    budget_limit: Gauge
    journal_lag: Gauge
    orders_fetched: Counter
    orders_published: Counter
    sync_runs: Counter
    tokens_owned: Gauge
    dependency_up: Gauge
    runs_abandoned: Counter
    polls: Counter
    poll_delay: Histogram
    poll_rounds: Counter
    polls_flushed: Counter
    records_published: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> PollerMetrics:
        """Register the metrics on `registry` (a fresh one by default)."""
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            allegro_requests=Counter(
                "poller_allegro_requests",
                "Allegro requests by endpoint and outcome",
                ["endpoint", "status"],
                registry=registry,
            ),
            allegro_latency=Histogram(
                "poller_allegro_request_seconds", "Allegro request latency", ["endpoint"], registry=registry
            ),
            rate_limited=Counter("poller_allegro_429", "429 answers (client id paused)", registry=registry),
            budget_used=Gauge(
                "poller_rate_budget_in_window", "Requests granted in the current window", registry=registry
            ),
            budget_limit=Gauge(
                "poller_rate_budget", "This process's share of the per-minute budget", registry=registry
            ),
            journal_lag=Gauge(
                "poller_journal_lag_seconds",
                "Now minus the newest event seen, per token",
                ["token_id"],
                registry=registry,
            ),
            orders_fetched=Counter(
                "poller_orders_fetched", "Checkout forms fetched", ["source"], registry=registry
            ),
            orders_published=Counter(
                "poller_orders_published",
                "Snapshots published (new revisions)",
                ["source"],
                registry=registry,
            ),
            sync_runs=Counter(
                "poller_sync_runs", "Sync runs by kind and outcome", ["kind", "phase"], registry=registry
            ),
            tokens_owned=Gauge("poller_tokens_owned", "Active tokens this process syncs", registry=registry),
            # 0 while the poller waits for a dependency (start-up or outage): the poller's readiness.
            dependency_up=Gauge(
                "poller_dependency_up",
                "1 when the dependency answered the last time the poller needed it, else 0",
                ["dependency"],
                registry=registry,
            ),
            runs_abandoned=Counter(
                "poller_sync_runs_abandoned",
                "Sync runs left running by a stopped or dead poller, closed as abandoned",
                registry=registry,
            ),
            polls=Counter(
                "poller_journal_polls",
                "Token polls by outcome (quiet: one journal read that found nothing, wrote nothing)",
                ["outcome"],
                registry=registry,
            ),
            poll_delay=Histogram(
                "poller_poll_delay_seconds",
                "How late a poll started after its due time (budget or slots short)",
                buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
                registry=registry,
            ),
            poll_rounds=Counter(
                "poller_poll_rounds",
                "Scheduler wake-ups that started polls (polls started / rounds: how well polls coalesce)",
                registry=registry,
            ),
            polls_flushed=Counter(
                "poller_poll_times_written",
                "Journal-read times written to the token rows (in batches)",
                registry=registry,
            ),
            records_published=Counter(
                "poller_order_records_published",
                "Order records published (new contents): shipments, invoices, tracking",
                ["kind"],
                registry=registry,
            ),
        )

    def observe_response(self, endpoint: str, outcome: str, seconds: float) -> None:
        """The Allegro client's response observer."""
        self.allegro_requests.labels(endpoint=endpoint, status=outcome).inc()
        self.allegro_latency.labels(endpoint=endpoint).observe(seconds)
        if outcome == "429":
            self.rate_limited.inc()
