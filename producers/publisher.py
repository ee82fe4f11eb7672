"""Publishing to Kafka: snapshots and sync-run records, through one idempotent producer (acks=all).

Delivery: `publish_snapshots` returns only when the broker has acknowledged every message of the batch;
callers move a cursor or backfill progress after it returns, never before. If any send fails the whole
batch counts as failed (some messages may have been written: the processor dedupes by revision).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from core.contract import SnapshotEnvelope, SyncRunRecord
from core.settings import KafkaSettings


def create_producer(settings: KafkaSettings, *, request_timeout_ms: int = 30_000) -> AIOKafkaProducer:
    """The process's producer: idempotent, acks from every in-sync replica, small linger for batching."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-poller",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        # Forms are ~3 KB: the default 16 KB batch would send a request per few messages.
        max_batch_size=1024 * 1024,
        max_request_size=settings.max_message_bytes,
        compression_type=None,
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
        if not envelopes:
            return
        futures = [
            await self._producer.send(
                self._snapshots_topic, value=envelope.encode(), key=envelope.key.encode()
            )
            for envelope in envelopes
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def publish_sync_run(self, record: SyncRunRecord) -> None:
        """Send one sync-run record and wait for its acknowledgement."""
        await self._producer.send_and_wait(
            self._sync_runs_topic, value=record.encode(), key=record.key.encode()
        )
