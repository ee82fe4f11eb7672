"""The worker's resources as one mode Service: asyncpg pool, Kafka producer, metrics endpoint.

Faust starts user services after the agents, so the agents wait on `ready` before their first batch.
Stopping the service closes the producer (flushing it) and the pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from mode import Service
from prometheus_client import start_http_server

from core.logging import configure_logging
from core.settings import Settings
from db.engine import asyncpg_dsn
from processors.handler import drain_outbox, handle_snapshot_batch
from processors.messages import RawMessage
from processors.metrics import SinkMetrics
from processors.publishing import AIOKafkaPublisher
from processors.retry import run_until_done
from processors.sync_runs import handle_sync_run_batch

log = logging.getLogger(__name__)


class SinkResources(Service):
    """Owns the connections the agents use; its handlers never raise (see `processors.retry`)."""

    def __init__(self, settings: Settings, metrics: SinkMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.ready = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._publisher: AIOKafkaPublisher | None = None
        self._http: Any = None

    async def on_start(self) -> None:
        """Open the pool and the producer, serve metrics, then drain the outbox in the background."""
        configure_logging(self.settings.log_level, json_logs=self.settings.log_json)
        kafka = self.settings.kafka
        # min_size=0: no connection is made here, so a worker starts while PostgreSQL is down and its
        # batches wait in the retry loop instead of the process crashing.
        self._pool = await asyncpg.create_pool(
            asyncpg_dsn(self.settings.database.url.get_secret_value()),
            min_size=0,
            max_size=self.settings.database.pool_size,
            command_timeout=60,
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-processor",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            # Dead letters carry the original bytes whatever their size: the broker's topic limit decides.
            max_request_size=16 * 1024 * 1024,
            request_timeout_ms=30_000,
        )
        await run_until_done(self._producer.start, what="starting the Kafka producer")
        self._publisher = AIOKafkaPublisher(self._producer)
        port = self.settings.processor.web_port
        if port:
            self._http, _ = start_http_server(port, addr="127.0.0.1", registry=self.metrics.registry)
        self.ready.set()
        self.add_future(self._drain_outbox())

    async def on_stop(self) -> None:
        """Flush and close the producer, close the pool and the metrics server."""
        if self._producer is not None:
            await self._producer.stop()
        if self._pool is not None:
            await self._pool.close()
        if self._http is not None:
            self._http.shutdown()

    async def _drain_outbox(self) -> None:
        # Changes committed by a worker that died before `allegro.orders` acknowledged them.
        pool, publisher = self._require()
        count = await run_until_done(
            lambda: drain_outbox(pool, publisher, orders_topic=self.settings.kafka.orders_topic),
            what="draining the order outbox",
        )
        if count:
            log.info("published %d pending order changes left by an earlier run", count)

    def _require(self) -> tuple[asyncpg.Pool, AIOKafkaPublisher]:
        if self._pool is None or self._publisher is None:
            raise RuntimeError("resources used before the service started")
        return self._pool, self._publisher

    async def store_snapshots(self, messages: Sequence[RawMessage]) -> None:
        """Handle one snapshot batch until it is done; returns only when its offsets may be acked."""
        pool, publisher = self._require()
        kafka = self.settings.kafka
        topic = kafka.snapshots_topic
        started = time.perf_counter()
        report = await run_until_done(
            lambda: handle_snapshot_batch(
                pool,
                publisher,
                messages,
                orders_topic=kafka.orders_topic,
                dlq_topic=kafka.dlq_topic,
                max_message_bytes=kafka.max_message_bytes,
            ),
            what=f"snapshot batch of {len(messages)}",
            on_retry=lambda exc: self.metrics.retries.labels(topic, type(exc).__name__).inc(),
        )
        self.metrics.observe_snapshots(topic, report, time.perf_counter() - started)

    async def store_sync_runs(self, messages: Sequence[RawMessage]) -> None:
        """Handle one sync-runs batch until it is done."""
        pool, publisher = self._require()
        kafka = self.settings.kafka
        dead = await run_until_done(
            lambda: handle_sync_run_batch(pool, publisher, messages, dlq_topic=kafka.dlq_topic),
            what=f"sync-runs batch of {len(messages)}",
            on_retry=lambda exc: self.metrics.retries.labels(kafka.sync_runs_topic, type(exc).__name__).inc(),
        )
        self.metrics.batch_size.labels(kafka.sync_runs_topic).observe(len(messages))
        self.metrics.dead_letters.labels(kafka.sync_runs_topic).inc(dead)
