"""The shape the sync-runs and order-records handlers share: decode each message, store the valid ones in
one transaction, dead-letter the rest.

Delivery rules: a message that does not decode is dead-lettered (source topic in the headers); the valid
ones are stored together in Kafka order, and when the database refuses the batch's data
(`processors.handler.DATA_ERRORS`) each is stored alone, still in Kafka order, and those it refuses
are dead-lettered too. The caller acks only after this returned, so `store` must be idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import asyncpg

from core.contract import ContractError
from processors.handler import DATA_ERRORS
from processors.messages import DeadLetter, RawMessage
from processors.publishing import RecordPublisher, dead_letter_records

log = logging.getLogger(__name__)

T = TypeVar("T")


class BatchHandler(Protocol):
    """A handler of one batch (`handle_sync_run_batch`, `handle_record_batch`, made by `batch_handler`)."""

    def __call__(
        self,
        pool: asyncpg.Pool,
        publisher: RecordPublisher,
        messages: Sequence[RawMessage],
        *,
        dlq_topic: str,
    ) -> Awaitable[int]:
        """Store the batch's valid records, dead-letter the rest; returns how many were dead-lettered."""


async def store_or_dead_letter(
    pool: asyncpg.Pool,
    publisher: RecordPublisher,
    messages: Sequence[RawMessage],
    *,
    decode: Callable[[bytes | None], T],
    store: Callable[[asyncpg.Connection, Sequence[T]], Awaitable[object]],
    what: str,
    dlq_topic: str,
) -> int:
    """Store the batch's valid records, dead-letter the rest; returns how many were dead-lettered.

    `decode` raises `core.contract.ContractError` for a message that is not a valid record; `store`
    writes records on a connection inside the transaction opened here; `what` names a record in the
    log line of an invalid one ("sync-run record"). Raises what `store` raises beyond the data errors
    (the caller retries the batch) and what publishing the dead letters raises.
    """
    records: list[tuple[RawMessage, T]] = []
    dead: list[DeadLetter] = []
    for message in messages:
        try:
            records.append((message, decode(message.value)))
        except ContractError as exc:
            log.warning(
                "invalid %s at %s/%d/%d: %s", what, message.topic, message.partition, message.offset, exc
            )
            dead.append(DeadLetter(message, type(exc).__name__, str(exc)))

    async def in_transaction(batch: Sequence[T]) -> None:
        if batch:
            async with pool.acquire() as conn, conn.transaction():
                await store(conn, batch)

    try:
        await in_transaction([record for _, record in records])
    except DATA_ERRORS:
        # Rare enough to isolate the culprit one record at a time, still in Kafka order.
        for message, record in records:
            try:
                await in_transaction([record])
            except DATA_ERRORS as exc:
                dead.append(DeadLetter(message, type(exc).__name__, str(exc)))
    if dead:
        await publisher.publish(dlq_topic, dead_letter_records(dead, now=datetime.now(UTC)))
    return len(dead)


def batch_handler(
    decode: Callable[[bytes | None], T],
    store: Callable[[asyncpg.Connection, Sequence[T]], Awaitable[object]],
    *,
    what: str,
) -> BatchHandler:
    """A BatchHandler that runs `store_or_dead_letter` with these `decode`, `store` and `what`."""

    async def handle(
        pool: asyncpg.Pool, publisher: RecordPublisher, messages: Sequence[RawMessage], *, dlq_topic: str
    ) -> int:
        return await store_or_dead_letter(
            pool, publisher, messages, decode=decode, store=store, what=what, dlq_topic=dlq_topic
        )

    return handle
