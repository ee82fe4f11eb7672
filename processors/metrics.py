"""The worker's Prometheus metrics, in a registry of their own built by the composition root."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from processors.handler import BatchReport
from processors.messages import RawMessage


class SinkMetrics:
    """Batch sizes, upsert latency, snapshot age at commit, orders changed, dead letters, retries."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.batch_size = Histogram(
            "processor_batch_size",
            "Messages per handled batch.",
            ["topic"],
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8000),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "processor_batch_seconds",
            "Time to store a batch and publish its changes (upsert latency), seconds.",
            ["topic"],
            registry=self.registry,
        )
        self.snapshot_age = Histogram(
            "processor_snapshot_age_seconds",
            "Age of a batch's oldest snapshot when the batch committed (Kafka timestamp to commit): how far "
            "the stored orders trail the poller, seconds.",
            ["topic"],
            buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=self.registry,
        )
        self.orders_changed = Counter(
            "processor_orders_changed_total",
            "Real order changes, by type.",
            ["change"],
            registry=self.registry,
        )
        self.revisions_added = Counter(
            "processor_revisions_added_total", "Rows appended to order_revisions.", registry=self.registry
        )
        self.skipped = Counter(
            "processor_snapshots_skipped_total",
            "Snapshots already stored or older than the stored state.",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "processor_dead_letters_total", "Messages sent to the DLQ.", ["topic"], registry=self.registry
        )
        self.retries = Counter(
            "processor_batch_retries_total",
            "Batch attempts that failed and were retried.",
            ["topic", "error"],
            registry=self.registry,
        )
        # The worker's readiness: 0 while a batch waits for PostgreSQL or Kafka to come back.
        self.storing = Gauge(
            "processor_storing",
            "1 when the last batch attempt of the topic succeeded, 0 while its batch is being retried",
            ["topic"],
            registry=self.registry,
        )

    def observe_snapshots(
        self, topic: str, messages: Sequence[RawMessage], report: BatchReport, seconds: float
    ) -> None:
        """Record one committed snapshot batch."""
        self.batch_size.labels(topic).observe(report.received)
        self.batch_seconds.labels(topic).observe(seconds)
        produced = [m.timestamp for m in messages if m.timestamp is not None]
        if produced:
            self.snapshot_age.labels(topic).observe(max(0.0, time.time() - min(produced)))
        # Counted per change type first: a labelled child per change was a lookup under a lock per order.
        for change, count in Tally(c.change for c in report.changes).items():
            self.orders_changed.labels(change).inc(count)
        self.revisions_added.inc(report.revisions_added)
        self.skipped.inc(report.skipped)
        self.dead_letters.labels(topic).inc(report.dead_letters)
