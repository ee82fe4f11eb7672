"""The snapshot batch handler: validate, dedupe, one transaction, publish real changes, clear the outbox.

Per batch: validate envelopes (dead-letter the invalid), drop contents already stored, decide each
order's current version (`processors.newness`, the one rule), then in ONE transaction upsert orders
(adding their revisions to the history), insert the other new contents into the history, mark
merged/purged forms, link successors, and record an outbox row; after the commit, publish new revisions
to `allegro.order-revisions` and changes to `allegro.orders`, wait for the acks, delete the outbox row.
What is published is built from the very rows written, so a replay of the topics rebuilds them exactly.

Plain async functions over an asyncpg pool and a `RecordPublisher`; no Faust here, so the same code runs under
the Faust agent, a plain aiokafka consumer and the tests.

Delivery: the caller acks the batch's offsets only after `handle_snapshot_batch` returned. Everything it
does is idempotent, so calling it again with the same messages (after a crash, a rebalance or a retry)
stores nothing twice and republishes only changes whose outbox entry was not cleared yet.

Errors: a poison message (bad envelope) becomes a dead letter before the database is touched; a row
PostgreSQL rejects for its data (`DataError`, integrity violations) is isolated by splitting the batch.
A form whose text is valid JSON is then stored without its jsonb query copy (jsonb refuses some valid
JSON: `core.documents`); only a form that is not JSON at all, or a row still rejected, is dead-lettered.
Anything else (connection lost, broker timeout, another writer changing an order meanwhile:
`StoredStateChanged`) propagates to the caller, which retries the whole batch (`processors.retry`).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core.contract import ContractError, RecordContent, SnapshotEnvelope, decode_snapshot
from core.documents import content_hash, jsonb_text
from core.order_fields import values_of
from db.queries import sink
from db.queries.sink import (
    ChangedOrder,
    ChangeKey,
    ContentKey,
    Gone,
    NewRevision,
    OrderKey,
    OrderRow,
)
from processors.messages import DeadLetter, RawMessage
from processors.newness import disproved_marks, first_copies, plan_batch
from processors.publishing import RecordPublisher, change_record, dead_letter_records, revision_record

# Errors PostgreSQL raises because of what a row holds, not because of the connection or the server.
DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# `OrderRow.jsonb_text` for a form stored without a query copy (the statements turn it into NULL).
NO_QUERY_COPY = ""


class StoredStateChanged(RuntimeError):
    """Another writer changed an order between this batch's read and its write; the batch is retried
    (nothing of it was written: the transaction rolls back)."""


@dataclass
class StoreOutcome:
    """What a batch did to the database, and its outbox row (None when it changed nothing)."""

    changes: list[ChangedOrder] = field(default_factory=list)
    revisions: list[NewRevision] = field(default_factory=list)
    outbox_entries: list[int] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0
    # A lane that did not commit (the others did): the caller publishes what committed, then retries.
    failure: Exception | None = None

    def merge(self, other: StoreOutcome) -> None:
        """Add another (sub-)batch's outcome to this one."""
        self.changes += other.changes
        self.revisions += other.revisions
        self.outbox_entries += other.outbox_entries
        self.dead_letters += other.dead_letters
        self.skipped += other.skipped


Valid = tuple[RawMessage, SnapshotEnvelope]


def validate(
    messages: Sequence[RawMessage], *, max_message_bytes: int
) -> tuple[list[Valid], list[DeadLetter]]:
    """Decode every envelope; the ones that break the contract become dead letters."""
    valid: list[Valid] = []
    dead: list[DeadLetter] = []
    for message in messages:
        size = len(message.value or b"") + len(message.key or b"")
        if size > max_message_bytes:
            dead.append(DeadLetter(message, "MessageTooLarge", f"{size} bytes > {max_message_bytes}"))
            continue
        try:
            valid.append((message, decode_snapshot(message.value)))
        except ContractError as exc:
            dead.append(DeadLetter(message, type(exc).__name__, str(exc)))
    return valid, dead


def _row(envelope: SnapshotEnvelope, *, query_copy: bool = True) -> OrderRow:
    assert envelope.checkout_form is not None and envelope.revision is not None  # noqa: S101 - contract
    text = envelope.checkout_form
    return OrderRow(
        token_id=envelope.token_id,
        user_id=envelope.user_id,
        seller_id=envelope.seller_id,
        checkout_form_id=envelope.checkout_form_id,
        revision=envelope.revision,
        updated_at=envelope.updated_at,
        fields=values_of(envelope),
        order_json=text,
        source=envelope.source,
        fetched_at=envelope.fetched_at,
        content_hash=content_hash(text),
        jsonb_text=jsonb_text(text) if query_copy else NO_QUERY_COPY,
    )


async def store_batch(
    conn: asyncpg.Connection, batch: Sequence[Valid], *, now: datetime, query_copy: bool = True
) -> StoreOutcome:
    """Store valid envelopes in one transaction on `conn` (a savepoint if one is open already);
    `query_copy=False` stores the forms without their jsonb copy."""
    rows = [_row(env, query_copy=query_copy) for _, env in batch if env.gone is None]
    firsts = first_copies(rows)
    gone = [
        Gone(env.token_id, env.checkout_form_id, env.gone, env.fetched_at) for _, env in batch if env.gone
    ]
    gone_keys = (OrderKey(g.token_id, g.checkout_form_id) for g in gone)
    keys = list({**dict.fromkeys(k.order for k in firsts), **dict.fromkeys(gone_keys)})
    stored = await sink.fetch_stored_state(conn, keys)
    # A key absent from `orders` has no history either (both are written in one transaction), and a key's
    # current content is in its history: only other contents of stored keys need a lookup.
    unsure = [k for k in firsts if k.order in stored and stored[k.order].content_hash != k.content_hash]
    known = await sink.fetch_stored_contents(conn, unsure)
    plan = plan_batch(firsts, stored, known, len(rows))
    upserts = list(plan.current.values())
    disproved = disproved_marks(rows, stored, {r.key for r in upserts})
    outcome = StoreOutcome(skipped=plan.skipped)
    async with conn.transaction():
        result = await sink.upsert_orders(conn, upserts, stored, plan.first_seen)
        if result.lost:
            raise StoredStateChanged(f"{len(result.lost)} orders changed by another writer meanwhile")
        new_revisions = result.revisions + await sink.insert_revisions(conn, plan.history)
        changes = result.changes + await sink.clear_disproved_marks(conn, disproved)
        changes += await sink.mark_gone(conn, gone)
        inserted = set(result.inserted)
        created = [r for r in upserts if r.line_item_ids and r.key in inserted]
        # Until this transaction commits, others wait here before their own merge check, so two forms of a
        # merge stored at once (other lane, other worker) still see each other.
        await sink.lock_merge_checks(conn, sorted({r.token_id for r in created}))
        links = await sink.find_merge_links(
            conn, [(r.token_id, r.checkout_form_id, r.line_item_ids) for r in created]
        )
        changes += await sink.link_successors(conn, links, now=now)
        entry = await sink.record_outbox(conn, changes, new_revisions)
    outcome.changes = changes
    # The keys' UUIDs came back from PostgreSQL: asyncpg's own UUID type formats and hashes in C, where
    # the envelopes' uuid.UUID does it in Python (the records' keys and values format each token thrice).
    outcome.revisions = [_new_revision(firsts[k], token_id=k.token_id) for k in new_revisions]
    outcome.outbox_entries = [entry] if entry is not None else []
    return outcome


def _new_revision(row: OrderRow, *, token_id: UUID) -> NewRevision:
    content = RecordContent(
        token_id, row.checkout_form_id, row.revision, row.updated_at, row.fetched_at, row.source
    )
    return NewRevision(content, row.order_json, row.content_hash)


def _is_json(text: str | None) -> bool:
    """True when `text` is valid JSON (RFC 8259: no NaN or Infinity; lone surrogates and U+0000 allowed)."""
    if text is None:
        return False
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return False
    return True


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


async def store_isolating(pool: asyncpg.Pool, batch: Sequence[Valid], *, now: datetime) -> StoreOutcome:
    """Store a batch in one transaction; if PostgreSQL rejects a row's data, bisect to isolate it, store
    it without its query copy if its form is JSON, and dead-letter it otherwise."""
    if not batch:
        return StoreOutcome()
    try:
        async with pool.acquire() as conn:
            return await store_batch(conn, batch, now=now)
    except DATA_ERRORS as exc:
        if len(batch) == 1:
            return await _store_alone(pool, batch[0], exc, now=now)
        # Halves in Kafka order, so the older half is written first, as it would have been.
        middle = len(batch) // 2
        outcome = await store_isolating(pool, batch[:middle], now=now)
        outcome.merge(await store_isolating(pool, batch[middle:], now=now))
        return outcome


async def _store_alone(pool: asyncpg.Pool, item: Valid, error: Exception, *, now: datetime) -> StoreOutcome:
    """A form PostgreSQL rejected: stored without its jsonb copy if it is JSON, else dead-lettered."""
    message, envelope = item
    if envelope.gone is None and _is_json(envelope.checkout_form):
        try:
            async with pool.acquire() as conn:
                return await store_batch(conn, [item], now=now, query_copy=False)
        except DATA_ERRORS as again:
            error = again
    return StoreOutcome(dead_letters=[DeadLetter(message, type(error).__name__, str(error))])


async def _store_in_lanes(
    pool: asyncpg.Pool, batch: Sequence[Valid], *, lanes: int, lane_min_messages: int, now: datetime
) -> StoreOutcome:
    lanes = max(1, min(lanes, len(batch) // lane_min_messages))
    split: list[list[Valid]] = [[] for _ in range(lanes)]
    for message, envelope in batch:
        split[zlib.crc32(envelope.key.encode()) % lanes].append((message, envelope))
    split = [lane for lane in split if lane]
    if len(split) <= 1:
        return await store_isolating(pool, batch, now=now)
    # Every lane runs to its end even if another fails: what committed must still be published.
    results = await asyncio.gather(
        *(store_isolating(pool, lane, now=now) for lane in split), return_exceptions=True
    )
    outcome = StoreOutcome()
    for result in results:
        if isinstance(result, StoreOutcome):
            outcome.merge(result)
        elif isinstance(result, Exception):
            outcome.failure = outcome.failure or result
        else:
            raise result  # cancellation and the like end the batch as they would a single transaction
    return outcome


@dataclass(frozen=True)
class Topics:
    """Where a batch's results go."""

    orders: str
    revisions: str
    dlq: str


async def publish_outcome(
    pool: asyncpg.Pool,
    publisher: RecordPublisher,
    topics: Topics,
    changes: Sequence[ChangedOrder],
    revisions: Sequence[NewRevision],
    outbox_entries: Sequence[int],
) -> None:
    """Publish changes and revisions, wait for every ack, then delete their outbox rows."""
    # Revisions first: a consumer that sees a change can always find its revision.
    if revisions:
        await publisher.publish(topics.revisions, [revision_record(r) for r in revisions])
    if changes:
        await publisher.publish(topics.orders, [change_record(c) for c in changes])
    if outbox_entries:
        async with pool.acquire() as conn:
            for entry in outbox_entries:
                await sink.delete_outbox(conn, entry)


@dataclass(frozen=True)
class BatchReport:
    """What one handled batch did, for metrics and logs."""

    received: int
    changes: list[ChangedOrder]
    dead_letters: int
    revisions_added: int
    skipped: int


@dataclass(frozen=True)
class StoredBatch:
    """A committed batch and what is left to publish for it."""

    report: BatchReport
    revisions: list[NewRevision]
    outbox_entries: list[int]
    # Set when part of the batch did not commit: publish the rest, then raise it to retry the batch.
    failure: Exception | None = None


async def store_snapshot_batch(
    pool: asyncpg.Pool,
    publisher: RecordPublisher,
    messages: Sequence[RawMessage],
    *,
    topics: Topics,
    max_message_bytes: int,
    lanes: int = 1,
    lane_min_messages: int = 1,
) -> StoredBatch:
    """Validate, store, dead-letter what cannot be stored; raises only for transient trouble. Once it
    returns, the batch's offsets may be acked: its changes are committed together with their outbox rows,
    and `publish_outcome` (now or in the background) sends them.

    The batch is split by order key into `lanes` transactions that run at once: while PostgreSQL works
    on one, this process prepares the next. One order's versions share a lane, so they never meet in
    two transactions, and they stay in Kafka order. A lane gets at least `lane_min_messages`: each costs
    its own round trips (lookups, transaction, outbox row and its deletion), which for the batches of a
    few dozen that a steady trickle brings are most of the work."""
    now = datetime.now(UTC)
    valid, dead = validate(messages, max_message_bytes=max_message_bytes)
    outcome = await _store_in_lanes(pool, valid, lanes=lanes, lane_min_messages=lane_min_messages, now=now)
    dead += outcome.dead_letters
    if dead:
        # Dead letters have no outbox: they are acknowledged before the batch's offsets may move.
        await publisher.publish(topics.dlq, dead_letter_records(dead, now=now))
    report = BatchReport(len(messages), outcome.changes, len(dead), len(outcome.revisions), outcome.skipped)
    return StoredBatch(report, outcome.revisions, outcome.outbox_entries, outcome.failure)


async def handle_snapshot_batch(
    pool: asyncpg.Pool,
    publisher: RecordPublisher,
    messages: Sequence[RawMessage],
    *,
    topics: Topics,
    max_message_bytes: int,
    lanes: int = 1,
    lane_min_messages: int = 1,
) -> BatchReport:
    """Store a batch and publish its results before returning (the worker publishes in the background)."""
    stored = await store_snapshot_batch(
        pool,
        publisher,
        messages,
        topics=topics,
        max_message_bytes=max_message_bytes,
        lanes=lanes,
        lane_min_messages=lane_min_messages,
    )
    await publish_outcome(
        pool, publisher, topics, stored.report.changes, stored.revisions, stored.outbox_entries
    )
    if stored.failure is not None:
        raise stored.failure
    return stored.report


async def publish_outbox_entry(
    pool: asyncpg.Pool, publisher: RecordPublisher, topics: Topics, entry: int
) -> None:
    """Publish what one outbox row stands for, from the current rows, then delete it."""
    async with pool.acquire() as conn:
        payload = await conn.fetchval("SELECT payload FROM publish_outbox WHERE id = $1", entry)
        if payload is None:
            return
        changes, revisions = await _load_outbox_payload(conn, payload)
    await publish_outcome(pool, publisher, topics, changes, revisions, [entry])


async def _load_outbox_payload(
    conn: asyncpg.Connection, payload: str | dict[str, Any]
) -> tuple[list[ChangedOrder], list[NewRevision]]:
    body = orjson.loads(payload) if isinstance(payload, str) else payload
    changes = await sink.fetch_changes(conn, [ChangeKey(UUID(t), f, c) for t, f, c in body["changes"]])
    # Rows written before migration 0006 name revisions without a content hash.
    revisions = await sink.fetch_revisions(
        conn, [ContentKey(UUID(k[0]), k[1], k[2], _hash_of(k)) for k in body["revisions"]]
    )
    return changes, revisions


def _hash_of(entry: list[Any]) -> bytes | None:
    return bytes.fromhex(entry[3]) if len(entry) > 3 and entry[3] else None


async def drain_outbox(
    pool: asyncpg.Pool, publisher: RecordPublisher, topics: Topics, *, up_to: int | None = None
) -> int:
    """Publish the outbox rows left behind (a crash came between commit and publish), those with ids up to
    `up_to` when given; returns the count."""
    total = 0
    while True:
        async with pool.acquire() as conn:
            entries = await sink.oldest_outbox_entries(conn, up_to=up_to)
        if not entries:
            return total
        for entry, payload in entries:
            async with pool.acquire() as conn:
                changes, revisions = await _load_outbox_payload(conn, payload)
            await publish_outcome(pool, publisher, topics, changes, revisions, [entry])
            total += 1
