"""Publishing to Kafka: snapshots and sync-run records, through one idempotent producer (acks=all).

Delivery: `publish_snapshots` returns only when the broker has acknowledged every message of the batch;
callers move a cursor or backfill progress after it returns, never before. If any send fails the whole
batch counts as failed (some messages may have been written: the processor dedupes by revision).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from core import sending
from core.contract import SnapshotEnvelope, SyncRunRecord
from core.sending import Record, send_all
from core.settings import KafkaSettings


def create_producer(settings: KafkaSettings, *, request_timeout_ms: int = 30_000) -> AIOKafkaProducer:
    """The poller's producer (see `core.sending.create_producer`)."""
    return sending.create_producer(
        settings,
        role="poller",
        max_request_size=settings.max_message_bytes,
        request_timeout_ms=request_timeout_ms,
    )


class Publisher:
    """Sends snapshots and sync-run records to their topics."""

    def __init__(self, producer: AIOKafkaProducer, settings: KafkaSettings) -> None:
        self._producer = producer
        self._snapshots_topic = settings.snapshots_topic
        self._sync_runs_topic = settings.sync_runs_topic

    async def publish_snapshots(self, envelopes: Sequence[SnapshotEnvelope]) -> None:
        """Send every envelope and wait for all acknowledgements; raises if any send failed."""
        records = [Record(envelope.key.encode(), envelope.encode()) for envelope in envelopes]
        # Many accounts publish at once through this producer: record by record (see core.sending).
        await send_all(self._producer, self._snapshots_topic, records, batched=False)

    async def publish_sync_run(self, record: SyncRunRecord) -> None:
        """Send one sync-run record and wait for its acknowledgement."""
        await self._producer.send_and_wait(
            self._sync_runs_topic, value=record.encode(), key=record.key.encode()
        )
