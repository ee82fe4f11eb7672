"""The snapshot batch handler: validate, dedupe, one transaction, publish real changes, clear the outbox.

Per batch: validate envelopes (dead-letter the invalid), keep the newest version of each order, drop
what is already stored, then in ONE transaction upsert orders (adding their revisions to the history),
insert older revisions, mark merged/purged forms, link successors, and record an outbox row; after the
commit, publish new revisions to `allegro.order-revisions` and changes to `allegro.orders`, wait for the
acks, delete the outbox row.

Plain async functions over an asyncpg pool and a `Publisher`; no Faust here, so the same code runs under
the Faust agent, a plain aiokafka consumer and the tests.

Delivery: the caller acks the batch's offsets only after `handle_snapshot_batch` returned. Everything it
does is idempotent, so calling it again with the same messages (after a crash, a rebalance or a retry)
stores nothing twice and republishes only changes whose outbox entry was not cleared yet.

Errors: a poison message (bad envelope) becomes a dead letter before the database is touched; a row
PostgreSQL rejects for its data (`DataError`, integrity violations) is isolated by splitting the batch and
dead-lettered alone. Anything else (connection lost, broker timeout) propagates to the caller, which
retries the whole batch (`processors.retry`).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core.contract import ContractError, SnapshotEnvelope, decode_snapshot
from db.queries import sink
from db.queries.sink import ChangedOrder, NewRevision, OrderKey, OrderRow, RevisionKey
from processors.messages import DeadLetter, RawMessage
from processors.publishing import Publisher, change_record, dead_letter_records, revision_record

_OLDEST = datetime.min.replace(tzinfo=UTC)
# Errors PostgreSQL raises because of what a row holds, not because of the connection or the server.
DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


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


def _row(envelope: SnapshotEnvelope) -> OrderRow:
    assert envelope.checkout_form is not None and envelope.revision is not None  # noqa: S101 - contract
    return OrderRow(
        token_id=envelope.token_id,
        user_id=envelope.user_id,
        seller_id=envelope.seller_id,
        checkout_form_id=envelope.checkout_form_id,
        revision=envelope.revision,
        status=envelope.status,
        fulfillment_status=envelope.fulfillment_status,
        buyer_login=envelope.buyer_login,
        bought_at=envelope.bought_at,
        updated_at=envelope.updated_at,
        total_amount=envelope.total_amount,
        currency=envelope.currency,
        line_item_ids=envelope.line_item_ids,
        order_json=envelope.checkout_form,
        source=envelope.source,
        fetched_at=envelope.fetched_at,
    )


def _newness(row: OrderRow) -> tuple[datetime, datetime]:
    return (row.updated_at or _OLDEST, row.fetched_at)


def _is_stale(row: OrderRow, stored: sink.StoredState | None) -> bool:
    """Mirrors the upsert's WHERE clause, so PostgreSQL is never sent a form it would discard."""
    if stored is None:
        return False
    if stored.revision == row.revision:
        return True
    return stored.updated_at is not None and (row.updated_at is None or row.updated_at < stored.updated_at)


async def store_batch(conn: asyncpg.Connection, batch: Sequence[Valid], *, now: datetime) -> StoreOutcome:
    """Store valid envelopes in one transaction on `conn` (a savepoint if one is open already)."""
    rows = [_row(env) for _, env in batch if env.gone is None]
    newest: dict[OrderKey, OrderRow] = {}
    distinct: dict[RevisionKey, OrderRow] = {}
    for row in rows:  # Kafka order: on equal newness the later message wins
        key = (row.token_id, row.checkout_form_id)
        if key not in newest or _newness(row) >= _newness(newest[key]):
            newest[key] = row
        distinct.setdefault(row.revision_key, row)
    gone = [(env.token_id, env.checkout_form_id, env.gone, env.fetched_at) for _, env in batch if env.gone]
    keys = list({**dict.fromkeys(newest), **dict.fromkeys((g[0], g[1]) for g in gone)})
    stored = await sink.fetch_stored_state(conn, keys)
    upserts = [row for key, row in newest.items() if not _is_stale(row, stored.get(key))]
    # A key absent from `orders` has no history either (both are written in one transaction), a key's
    # current revision is in its history, and the upsert adds its own rows' revisions: only the rest of
    # the batch's revisions of stored keys need a lookup.
    upserted = {row.revision_key for row in upserts}
    unsure = [k for k in distinct if k not in upserted and k[:2] in stored and stored[k[:2]].revision != k[2]]
    known = await sink.fetch_stored_revisions(conn, unsure)
    outcome = StoreOutcome(skipped=len(rows) - len(upserts))
    async with conn.transaction():
        result = await sink.upsert_orders(conn, upserts)
        written = {(c.token_id, c.checkout_form_id, c.revision) for c in result.changes}
        # Older revisions of the batch, and (should another writer have won the race) an upsert's own.
        history = [
            row
            for k, row in distinct.items()
            if k not in known
            and k not in written
            and not (k[:2] in stored and stored[k[:2]].revision == k[2])
        ]
        new_revisions = result.revisions + await sink.insert_revisions(conn, history)
        changes = result.changes + await sink.mark_gone(conn, gone)
        inserted = set(result.inserted)
        created = [r for r in upserts if r.line_item_ids and (r.token_id, r.checkout_form_id) in inserted]
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
    outcome.revisions = [_new_revision(distinct[k], token_id=k[0]) for k in new_revisions]
    outcome.outbox_entries = [entry] if entry is not None else []
    return outcome


def _new_revision(row: OrderRow, *, token_id: UUID) -> NewRevision:
    return NewRevision(
        token_id=token_id,
        checkout_form_id=row.checkout_form_id,
        revision=row.revision,
        updated_at=row.updated_at,
        captured_at=row.fetched_at,
        source=row.source,
        order_json=row.order_json,
    )


async def store_isolating(pool: asyncpg.Pool, batch: Sequence[Valid], *, now: datetime) -> StoreOutcome:
    """Store a batch in one transaction; if PostgreSQL rejects a row's data, bisect to dead-letter it."""
    if not batch:
        return StoreOutcome()
    try:
        async with pool.acquire() as conn:
            return await store_batch(conn, batch, now=now)
    except DATA_ERRORS as exc:
        if len(batch) == 1:
            return StoreOutcome(dead_letters=[DeadLetter(batch[0][0], type(exc).__name__, str(exc))])
        # Halves in Kafka order, so the older half is written first, as it would have been.
        middle = len(batch) // 2
        outcome = await store_isolating(pool, batch[:middle], now=now)
        outcome.merge(await store_isolating(pool, batch[middle:], now=now))
        return outcome


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
    publisher: Publisher,
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
    publisher: Publisher,
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
    publisher: Publisher,
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


async def publish_outbox_entry(pool: asyncpg.Pool, publisher: Publisher, topics: Topics, entry: int) -> None:
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
    changes = await sink.fetch_changes(conn, [(UUID(t), f, c) for t, f, c in body["changes"]])
    revisions = await sink.fetch_revisions(conn, [(UUID(t), f, r) for t, f, r in body["revisions"]])
    return changes, revisions


async def drain_outbox(
    pool: asyncpg.Pool, publisher: Publisher, topics: Topics, *, up_to: int | None = None
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
