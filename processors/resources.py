"""The worker's resources as one mode Service: asyncpg pool, Kafka producer, metrics endpoint.

Faust starts user services after the agents, so the agents wait on `ready` before their first batch.
Stopping the service closes the producer (flushing it) and the pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from mode import Service
from prometheus_client import start_http_server

from core.logging import configure_logging
from core.runtime import release_free_memory
from core.sending import create_producer
from core.settings import Settings
from db.queries import sink
from processors.batch_store import BatchHandler
from processors.faust_internals import real_stderr
from processors.handler import StoredBatch, Topics, drain_outbox, publish_outcome, store_snapshot_batch
from processors.messages import RawMessage
from processors.metrics import SinkMetrics
from processors.publishing import KafkaRecordPublisher
from processors.records import handle_record_batch
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
        # Whether the worker is shutting down (set by the app): a failing batch is then left unacked
        # instead of retried, so the stop does not wait on it.
        self.stopping: Callable[[], bool] = lambda: False
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._publisher: KafkaRecordPublisher | None = None
        self._http: Any = None
        # Committed batches waiting to be published, in commit order (so one order's messages keep their
        # order). Bounded: when Kafka lags, the agents wait instead of piling batches up in memory.
        self._to_publish: asyncio.Queue[StoredBatch] = asyncio.Queue(maxsize=2)
        kafka = settings.kafka
        self.topics = Topics(orders=kafka.orders_topic, revisions=kafka.revisions_topic, dlq=kafka.dlq_topic)

    async def on_start(self) -> None:
        """Open the pool and the producer, serve metrics, then drain the outbox in the background."""
        # Not into Faust's stderr proxy, where every record logged after start-up was dropped.
        configure_logging(self.settings.log_level, json_logs=self.settings.log_json, stream=real_stderr())
        kafka = self.settings.kafka
        # min_size=0: no connection is made here, so a worker starts while PostgreSQL is down and its
        # batches wait in the retry loop instead of the process crashing.
        self._pool = await sink.create_pool(
            self.settings.database.url.get_secret_value(), max_size=self.settings.database.pool_size
        )
        # Dead letters carry the original bytes whatever their size: the broker's topic limit decides.
        self._producer = create_producer(kafka, role="processor", max_request_size=16 * 1024 * 1024)
        await run_until_done(self._producer.start, what="starting the Kafka producer")
        self._publisher = KafkaRecordPublisher(self._producer)
        port = self.settings.processor.metrics_port
        if port:
            self._http, _ = start_http_server(port, addr="127.0.0.1", registry=self.metrics.registry)
        self.add_future(self._drain_outbox())
        self.add_future(self._publish_in_order())

    async def on_stop(self) -> None:
        """Publish what is queued (briefly), flush and close the producer, close the pool and metrics."""
        try:
            async with asyncio.timeout(10):
                await self._to_publish.join()
        except TimeoutError:
            # Committed with their outbox rows: the next start publishes them.
            log.warning(
                "stopping with %d batches unpublished; the outbox keeps them", self._to_publish.qsize()
            )
        if self._producer is not None:
            await self._producer.stop()
        if self._pool is not None:
            await self._pool.close()
        if self._http is not None:
            self._http.shutdown()

    @Service.timer(10.0)
    async def _release_free_memory(self) -> None:
        """Let the resident memory follow what is in use, not the largest burst so far."""
        release_free_memory()

    async def _drain_outbox(self) -> None:
        # Changes committed by a worker that died before `allegro.orders` acknowledged them. Only rows older
        # than this worker's first batch: its own are published by `_publish_in_order`, and publishing them
        # from here as well would send them twice. The agents wait for `ready` until that line is drawn.
        pool, publisher = self._require()

        async def last_entry() -> int:
            async with pool.acquire() as conn:
                return await sink.last_outbox_entry(conn)

        up_to = await run_until_done(last_entry, what="reading the order outbox")
        self.ready.set()
        count = await run_until_done(
            lambda: drain_outbox(pool, publisher, self.topics, up_to=up_to),
            what="draining the order outbox",
        )
        if count:
            log.info("published %d outbox entries left by an earlier run", count)

    def _require(self) -> tuple[asyncpg.Pool, KafkaRecordPublisher]:
        if self._pool is None or self._publisher is None:
            raise RuntimeError("resources used before the service started")
        return self._pool, self._publisher

    async def store_snapshots(self, messages: Sequence[RawMessage]) -> None:
        """Store one snapshot batch until it is committed; returns when its offsets may be acked.

        Publishing its changes is queued, not awaited: the outbox row committed with the changes makes
        the offsets independent of the publish, so the next batch's database work overlaps this one's
        Kafka round trips.
        """
        pool, publisher = self._require()
        kafka = self.settings.kafka
        topic = kafka.snapshots_topic
        started = time.perf_counter()

        async def attempt() -> StoredBatch:
            stored = await store_snapshot_batch(
                pool,
                publisher,
                messages,
                topics=self.topics,
                max_message_bytes=kafka.max_message_bytes,
                lanes=self.settings.processor.store_lanes,
                lane_min_messages=self.settings.processor.store_lane_min_messages,
            )
            if stored.outbox_entries:  # committed, even when another lane failed and the batch is retried
                await self._to_publish.put(stored)
            if stored.failure is not None:
                raise stored.failure
            return stored

        stored = await run_until_done(
            attempt,
            what=f"snapshot batch of {len(messages)}",
            on_retry=lambda exc: self._retrying(topic, exc),
            stopping=self.stopping,
        )
        self.metrics.storing.labels(topic).set(1)
        self.metrics.observe_snapshots(topic, messages, stored.report, time.perf_counter() - started)

    def _retrying(self, topic: str, exc: BaseException) -> None:
        self.metrics.retries.labels(topic, type(exc).__name__).inc()
        self.metrics.storing.labels(topic).set(0)

    async def _publish_in_order(self) -> None:
        while True:
            stored = await self._to_publish.get()
            try:
                await run_until_done(
                    functools.partial(self._publish, stored),
                    what=f"publishing {len(stored.report.changes)} order changes",
                )
            finally:
                self._to_publish.task_done()

    async def _publish(self, stored: StoredBatch) -> None:
        pool, publisher = self._require()
        await publish_outcome(
            pool, publisher, self.topics, stored.report.changes, stored.revisions, stored.outbox_entries
        )

    async def store_sync_runs(self, messages: Sequence[RawMessage]) -> None:
        """Handle one sync-runs batch until it is done (`processors.sync_runs`)."""
        await self._store_until_done(
            messages, handle_sync_run_batch, topic=self.settings.kafka.sync_runs_topic, what="sync-runs"
        )

    async def store_order_records(self, messages: Sequence[RawMessage]) -> None:
        """Store one order-records batch until it is done (`processors.records`)."""
        await self._store_until_done(
            messages, handle_record_batch, topic=self.settings.kafka.records_topic, what="order-records"
        )

    async def _store_until_done(
        self, messages: Sequence[RawMessage], handle: BatchHandler, *, topic: str, what: str
    ) -> None:
        """Run `handle` on the batch until it is done, then count the batch and its dead letters under
        `topic`; `what` names the batch in the retry log ("sync-runs batch of 3")."""
        pool, publisher = self._require()
        dlq_topic = self.settings.kafka.dlq_topic
        dead = await run_until_done(
            lambda: handle(pool, publisher, messages, dlq_topic=dlq_topic),
            what=f"{what} batch of {len(messages)}",
            on_retry=lambda exc: self._retrying(topic, exc),
            stopping=self.stopping,
        )
        self.metrics.storing.labels(topic).set(1)
        self.metrics.batch_size.labels(topic).observe(len(messages))
        self.metrics.dead_letters.labels(topic).inc(dead)
