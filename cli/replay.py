"""Rebuild `orders` and `order_revisions` from Kafka: `allegro.order-revisions` for the history, then
`allegro.orders` for the latest state of each order; then `order_records` and `order_record_versions`
from `allegro.order-records` (every version of every shipment, tracking and invoice record, stored as
the worker stores them: `db.queries.order_records.store_records`).

Both topics are read from their beginning up to the end offsets seen at start, so a replay is bounded
even while the service keeps writing. Nothing is committed to Kafka (no consumer group): a replay is a
read, and it can be repeated; the database writes are idempotent. Each record's form is taken as the
exact text it carries (`core.contract.split_document`), never decoded and encoded again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contract import ContractError, decode_order_change, decode_revision_record, split_document
from core.order_records import OrderRecordMessage, decode_order_record
from core.settings import KafkaSettings
from core.topics import partition_ids
from db.queries.order_records import driver_connection, store_records
from db.queries.replay import restore_orders, restore_revisions

log = logging.getLogger(__name__)

BATCH = 2000
Progress = Callable[[str, int, int], None]


@dataclass
class ReplayReport:
    """What a replay read and wrote."""

    revisions_read: int = 0
    orders_read: int = 0
    orders_written: int = 0
    skipped_invalid: int = 0
    records_read: int = 0


async def replay(
    engine: AsyncEngine,
    kafka: KafkaSettings,
    *,
    token_id: UUID | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay the revision, order and order-record topics into PostgreSQL, for one token or all."""
    report = ReplayReport()
    prefix = f"{token_id}:".encode() if token_id else b""
    async for batch in _read_topic(kafka, kafka.revisions_topic, prefix, progress):
        records = []
        for value in batch:
            try:
                shell, order_json = split_document(value)
                records.append((decode_revision_record(shell), order_json))
            except ContractError as exc:
                report.skipped_invalid += 1
                log.warning("skipping an invalid revision record: %s", exc)
        async with engine.begin() as connection:
            await restore_revisions(connection, records)
        report.revisions_read += len(records)
    async for batch in _read_topic(kafka, kafka.orders_topic, prefix, progress):
        changes = []
        for value in batch:
            try:
                shell, order_json = split_document(value)
                changes.append((decode_order_change(shell), order_json))
            except ContractError as exc:
                report.skipped_invalid += 1
                log.warning("skipping an invalid order change: %s", exc)
        async with engine.begin() as connection:
            report.orders_written += await restore_orders(connection, changes)
        report.orders_read += len(changes)
    async for batch in _read_topic(kafka, kafka.records_topic, prefix, progress):
        messages: list[OrderRecordMessage] = []
        for value in batch:
            try:
                messages.append(decode_order_record(value))
            except ContractError as exc:
                report.skipped_invalid += 1
                log.warning("skipping an invalid order record: %s", exc)
        async with engine.begin() as connection:
            await store_records(await driver_connection(connection), messages)
        report.records_read += len(messages)
    return report


async def _read_topic(
    kafka: KafkaSettings, topic: str, key_prefix: bytes, progress: Progress | None
) -> AsyncIterator[list[bytes]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=kafka.max_message_bytes,
        fetch_max_bytes=max(kafka.max_message_bytes, 52_428_800),
    )
    partitions = [TopicPartition(topic, p) for p in await partition_ids(kafka.bootstrap_servers, topic)]
    if not partitions:
        return
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        start = {tp: await consumer.position(tp) for tp in partitions}
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > start[tp]}
        total = sum(end[tp] - start[tp] for tp in partitions)
        done = 0
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=BATCH)
            batch: list[bytes] = []
            for tp, messages in fetched.items():
                for message in messages:
                    if message.offset >= end[tp]:
                        break
                    done += 1
                    if message.value is not None and (message.key or b"").startswith(key_prefix):
                        batch.append(message.value)
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if batch:
                yield batch
            if progress:
                progress(topic, done, total)
    finally:
        await consumer.stop()
