"""The sync-runs batch handler: lifecycle records from `allegro.sync-runs` into `sync_history`.

Same delivery rules as the snapshot handler: invalid records are dead-lettered (source topic in the
headers), valid ones are upserted in one transaction in Kafka order, and the caller acks only after this
returned. The upsert is order-safe (`db.queries.sync_history`), so redelivery changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from core.contract import ContractError, SyncRunRecord, decode_sync_run
from db.queries.sync_history import upsert_sync_runs
from processors.handler import DATA_ERRORS
from processors.messages import DeadLetter, RawMessage
from processors.publishing import RecordPublisher, dead_letter_records

log = logging.getLogger(__name__)


async def handle_sync_run_batch(
    pool: asyncpg.Pool, publisher: RecordPublisher, messages: Sequence[RawMessage], *, dlq_topic: str
) -> int:
    """Store the batch's valid records, dead-letter the rest; returns how many were dead-lettered."""
    records: list[tuple[RawMessage, SyncRunRecord]] = []
    dead: list[DeadLetter] = []
    for message in messages:
        try:
            records.append((message, decode_sync_run(message.value)))
        except ContractError as exc:
            log.warning(
                "invalid sync-run record at %s/%d/%d: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            dead.append(DeadLetter(message, type(exc).__name__, str(exc)))
    try:
        await _upsert(pool, [record for _, record in records])
    except DATA_ERRORS:
        # Rare enough to isolate the culprit one record at a time, still in Kafka order.
        for message, record in records:
            try:
                await _upsert(pool, [record])
            except DATA_ERRORS as exc:
                dead.append(DeadLetter(message, type(exc).__name__, str(exc)))
    if dead:
        await publisher.publish(dlq_topic, dead_letter_records(dead, now=datetime.now(UTC)))
    return len(dead)


async def _upsert(pool: asyncpg.Pool, records: Sequence[SyncRunRecord]) -> None:
    if records:
        async with pool.acquire() as conn, conn.transaction():
            await upsert_sync_runs(conn, records)
