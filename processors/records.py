"""The order-records batch handler: `allegro.order-records` into `order_records` and
`order_record_versions` (`db.queries.order_records`).

Same delivery rules as the other handlers: messages that are not a valid record are dead-lettered (source
topic in the headers), valid ones are stored in one transaction, and the caller acks only after this
returned. Storing is idempotent and order-independent, so redelivery changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from core.contract import ContractError
from core.order_records import OrderRecordMessage, decode_order_record
from db.queries.order_records import store_records
from processors.handler import DATA_ERRORS
from processors.messages import DeadLetter, RawMessage
from processors.publishing import RecordPublisher, dead_letter_records

log = logging.getLogger(__name__)


async def handle_record_batch(
    pool: asyncpg.Pool, publisher: RecordPublisher, messages: Sequence[RawMessage], *, dlq_topic: str
) -> int:
    """Store the batch's valid records, dead-letter the rest; returns how many were dead-lettered."""
    records: list[tuple[RawMessage, OrderRecordMessage]] = []
    dead: list[DeadLetter] = []
    for message in messages:
        try:
            records.append((message, decode_order_record(message.value)))
        except ContractError as exc:
            log.warning(
                "invalid order record at %s/%d/%d: %s", message.topic, message.partition, message.offset, exc
            )
            dead.append(DeadLetter(message, type(exc).__name__, str(exc)))
    try:
        await _store(pool, [record for _, record in records])
    except DATA_ERRORS:
        # Rare enough to isolate the culprit one record at a time.
        for message, record in records:
            try:
                await _store(pool, [record])
            except DATA_ERRORS as exc:
                dead.append(DeadLetter(message, type(exc).__name__, str(exc)))
    if dead:
        await publisher.publish(dlq_topic, dead_letter_records(dead, now=datetime.now(UTC)))
    return len(dead)


async def _store(pool: asyncpg.Pool, records: Sequence[OrderRecordMessage]) -> None:
    if records:
        async with pool.acquire() as conn, conn.transaction():
            await store_records(conn, records)
