"""The snapshot batch handler: validate, dedupe, one transaction, publish real changes, clear the outbox.

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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import orjson

from core.contract import ContractError, SnapshotEnvelope, decode_snapshot
from db.queries import sink
from db.queries.sink import ChangedOrder, OrderKey, OrderRow
from processors.messages import DeadLetter, RawMessage
from processors.publishing import Publisher, change_record, dead_letter_records

_OLDEST = datetime.min.replace(tzinfo=UTC)
# Errors PostgreSQL raises because of what a row holds, not because of the connection or the server.
DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


@dataclass
class StoreOutcome:
    """What a batch did to the database."""

    changes: list[ChangedOrder] = field(default_factory=list)
    republish_keys: list[OrderKey] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    revisions_added: int = 0
    skipped: int = 0

    def merge(self, other: StoreOutcome) -> None:
        """Add another (sub-)batch's outcome to this one."""
        self.changes += other.changes
        self.republish_keys += other.republish_keys
        self.dead_letters += other.dead_letters
        self.revisions_added += other.revisions_added
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


async def _store(conn: asyncpg.Connection, batch: Sequence[Valid], now: datetime) -> StoreOutcome:
    rows = [_row(env) for _, env in batch if env.gone is None]
    newest: dict[OrderKey, OrderRow] = {}
    distinct: dict[tuple[UUID, str, str], OrderRow] = {}
    for row in rows:  # Kafka order: on equal newness the later message wins
        key = (row.token_id, row.checkout_form_id)
        if key not in newest or _newness(row) >= _newness(newest[key]):
            newest[key] = row
        distinct.setdefault((*key, row.revision), row)
    gone = [(env.token_id, env.checkout_form_id, env.gone, env.fetched_at) for _, env in batch if env.gone]
    keys = list({**dict.fromkeys(newest), **dict.fromkeys((g[0], g[1]) for g in gone)})
    stored = await sink.fetch_stored_state(conn, keys)
    # A key absent from `orders` has no history either (both are written in one transaction), and a
    # key's current revision is in its history: only the remaining revisions need a lookup.
    unsure = [r for r in distinct if r[:2] in stored and stored[r[:2]].revision != r[2]]
    known = await sink.fetch_stored_revisions(conn, unsure)
    history = [
        row
        for triple, row in distinct.items()
        if not (triple[:2] in stored and (stored[triple[:2]].revision == triple[2] or triple in known))
    ]
    upserts = [row for key, row in newest.items() if not _is_stale(row, stored.get(key))]
    outcome = StoreOutcome(skipped=len(rows) - len(upserts))
    sellers = {env.token_id: env.seller_id for _, env in batch}
    async with conn.transaction():
        line_items = [orjson.dumps(r.line_item_ids).decode() for r in upserts]
        changed, inserted = await sink.upsert_orders(conn, upserts, line_item_json=line_items)
        outcome.revisions_added = await sink.insert_revisions(conn, history)
        changed += await sink.mark_gone(conn, gone)
        created = [(*key, newest[key].line_item_ids) for key in inserted if newest[key].line_item_ids]
        changed += await sink.link_successors(conn, created, now=now)
    outcome.changes = [dataclasses.replace(c, seller_id=sellers.get(c.token_id)) for c in changed]
    changed_keys = {(c.token_id, c.checkout_form_id) for c in changed}
    # A change committed before a crash, never acknowledged by `allegro.orders`: publish it again now.
    outcome.republish_keys = [
        k for k, s in stored.items() if s.pending_change is not None and k not in changed_keys
    ]
    return outcome


async def store_isolating(pool: asyncpg.Pool, batch: Sequence[Valid], *, now: datetime) -> StoreOutcome:
    """Store a batch in one transaction; if PostgreSQL rejects a row's data, bisect to dead-letter it."""
    if not batch:
        return StoreOutcome()
    try:
        async with pool.acquire() as conn:
            return await _store(conn, batch, now)
    except DATA_ERRORS as exc:
        if len(batch) == 1:
            return StoreOutcome(dead_letters=[DeadLetter(batch[0][0], type(exc).__name__, str(exc))])
        # Halves in Kafka order, so the older half is written first, as it would have been.
        middle = len(batch) // 2
        outcome = await store_isolating(pool, batch[:middle], now=now)
        outcome.merge(await store_isolating(pool, batch[middle:], now=now))
        return outcome


async def publish_and_clear(
    pool: asyncpg.Pool, publisher: Publisher, orders_topic: str, changes: Sequence[ChangedOrder]
) -> None:
    """Publish changes, wait for every ack, then clear exactly their outbox entries."""
    if not changes:
        return
    await publisher.publish(orders_topic, [change_record(c) for c in changes])
    async with pool.acquire() as conn:
        await sink.clear_pending_changes(conn, changes)


@dataclass(frozen=True)
class BatchReport:
    """What one handled batch did, for metrics and logs."""

    received: int
    changes: list[ChangedOrder]
    dead_letters: int
    revisions_added: int
    skipped: int


async def handle_snapshot_batch(
    pool: asyncpg.Pool,
    publisher: Publisher,
    messages: Sequence[RawMessage],
    *,
    orders_topic: str,
    dlq_topic: str,
    max_message_bytes: int,
) -> BatchReport:
    """Everything one batch needs before its offsets may be acked; raises only for transient trouble."""
    now = datetime.now(UTC)
    valid, dead = validate(messages, max_message_bytes=max_message_bytes)
    outcome = await store_isolating(pool, valid, now=now)
    dead += outcome.dead_letters
    if dead:
        await publisher.publish(dlq_topic, dead_letter_records(dead, now=now))
    changes = outcome.changes
    if outcome.republish_keys:
        async with pool.acquire() as conn:
            changes += await sink.fetch_pending_changes(conn, keys=outcome.republish_keys)
    await publish_and_clear(pool, publisher, orders_topic, changes)
    return BatchReport(len(messages), changes, len(dead), outcome.revisions_added, outcome.skipped)


async def drain_outbox(
    pool: asyncpg.Pool, publisher: Publisher, *, orders_topic: str, page: int = 1000
) -> int:
    """Publish every change still pending (a crash came between commit and publish); returns the count."""
    total = 0
    while True:
        async with pool.acquire() as conn:
            changes = await sink.fetch_pending_changes(conn, limit=page)
        if not changes:
            return total
        await publish_and_clear(pool, publisher, orders_topic, changes)
        total += len(changes)
