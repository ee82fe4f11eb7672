"""Publishing to Kafka: snapshots and sync-run records, through one idempotent producer (acks=all).

Delivery: `publish_snapshots` returns only when the broker has acknowledged every message of the batch;
callers move a cursor or backfill progress after it returns, never before. If any send fails the whole
batch counts as failed (some messages may have been written: the processor dedupes by revision).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, UnknownProducerId

from core import sending
from core.contract import SnapshotEnvelope, SyncRunRecord
from core.sending import Record, send_all
from core.settings import KafkaSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors after which an idempotent producer never sends again (its producer id and sequence numbers no
# longer match the broker's, e.g. after a long broker outage expired batches on one side only): only a
# new producer, with a new producer id, can.
SPENT_PRODUCER = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


def create_poller_producer(settings: KafkaSettings, *, request_timeout_ms: int = 30_000) -> AIOKafkaProducer:
    """The poller's producer (see `core.sending.create_producer`)."""
    return sending.create_producer(
        settings,
        role="poller",
        max_request_size=settings.max_message_bytes,
        request_timeout_ms=request_timeout_ms,
    )


class PollerPublisher:
    """Sends snapshots and sync-run records to their topics.

    A producer that a broker answered with `SPENT_PRODUCER` is replaced by a new one from `renew`
    before the error is raised: the failed send counts as failed (nothing moves), and the next try goes
    through the new producer instead of failing the same way for as long as the process lives.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        settings: KafkaSettings,
        *,
        renew: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self._producer = producer
        self._renew = renew
        self._renewing = asyncio.Lock()
        self._snapshots_topic = settings.snapshots_topic
        self._sync_runs_topic = settings.sync_runs_topic
        self._records_topic = settings.records_topic

    async def publish_snapshots(self, envelopes: Sequence[SnapshotEnvelope]) -> None:
        """Send every envelope and wait for all acknowledgements; raises if any send failed."""
        records = [Record(envelope.key.encode(), envelope.encode()) for envelope in envelopes]
        # Many accounts publish at once through this producer: record by record (see core.sending).
        producer = self._producer
        await self._renewing_on_failure(
            producer, lambda: send_all(producer, self._snapshots_topic, records, batched=False)
        )

    async def publish_records(self, records: Sequence[Record]) -> None:
        """Send order-record messages (`producers.records`) and wait for every acknowledgement."""
        producer = self._producer
        await self._renewing_on_failure(
            producer, lambda: send_all(producer, self._records_topic, records, batched=False)
        )

    async def publish_sync_run(self, record: SyncRunRecord) -> None:
        """Send one sync-run record and wait for its acknowledgement."""
        producer = self._producer
        await self._renewing_on_failure(
            producer,
            lambda: producer.send_and_wait(
                self._sync_runs_topic, value=record.encode(), key=record.key.encode()
            ),
        )

    async def close(self) -> None:
        """Flush and stop the current producer."""
        await self._producer.stop()

    async def _renewing_on_failure(self, producer: AIOKafkaProducer, send: Callable[[], Awaitable[T]]) -> T:
        try:
            return await send()
        except SPENT_PRODUCER as exc:
            await self._replace(producer, exc)
            raise

    async def _replace(self, spent: AIOKafkaProducer, reason: Exception) -> None:
        """Swap in a new producer, once for all the sends that failed on `spent`."""
        if self._renew is None:
            return
        async with self._renewing:
            if self._producer is not spent:
                return  # another send already replaced it
            fresh = self._renew()
            await fresh.start()
            self._producer = fresh
        log.warning("Kafka producer replaced after %s: %s", type(reason).__name__, reason)
        # What the spent producer still holds can only fail; do not let its stop hold anything up.
        stopping = asyncio.create_task(spent.stop())
        stopping.add_done_callback(lambda task: task.cancelled() or task.exception())
