"""Write-side SQL of the snapshot sink, on a plain asyncpg connection (the processor's hot path).

Every statement is set-based: parallel arrays go in through `unnest()`, one round trip per statement
whatever the batch size. The checkout form travels as JSON text and is cast to JSONB inside the
statement, so PostgreSQL parses exactly the documents it keeps: callers first ask `fetch_stored_state`
and drop what is already stored before they send a form.

`pending_change` is a transactional outbox: the statement that makes a real change also records its
type, and `clear_pending_changes` removes it once `allegro.orders` has acknowledged the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

OrderKey = tuple[UUID, str]


@dataclass(frozen=True)
class StoredState:
    """What the database holds for one order key before a batch is written."""

    revision: str
    updated_at: datetime | None
    pending_change: str | None


@dataclass(frozen=True)
class OrderRow:
    """One order version to upsert (the newest of its key in a batch)."""

    token_id: UUID
    user_id: str
    checkout_form_id: str
    revision: str
    status: str | None
    fulfillment_status: str | None
    buyer_login: str | None
    bought_at: datetime | None
    updated_at: datetime | None
    total_amount: Decimal | None
    currency: str | None
    line_item_ids: list[str]
    order_json: str
    source: str
    fetched_at: datetime


@dataclass(frozen=True)
class ChangedOrder:
    """A row a statement really changed, as RETURNING reported it."""

    token_id: UUID
    user_id: str
    checkout_form_id: str
    revision: str
    change: str
    updated_at: datetime | None
    captured_at: datetime
    source: str
    superseded_at: datetime | None
    superseded_by: str | None
    missing_upstream_since: datetime | None
    order_json: str | None
    seller_id: str | None = None


# Every statement that changes an order returns these columns of it (as `o`), in this order.


def _changed(record: asyncpg.Record, *, order_json: str | None, seller_id: str | None) -> ChangedOrder:
    return ChangedOrder(
        token_id=record["token_id"],
        user_id=record["user_id"],
        checkout_form_id=record["checkout_form_id"],
        revision=record["revision"],
        change=record["pending_change"],
        updated_at=record["updated_at"],
        captured_at=record["last_synced_at"],
        source=record["source"],
        superseded_at=record["superseded_at"],
        superseded_by=record["superseded_by"],
        missing_upstream_since=record["missing_upstream_since"],
        order_json=order_json,
        seller_id=seller_id,
    )


async def fetch_stored_state(
    conn: asyncpg.Connection, keys: Sequence[OrderKey]
) -> dict[OrderKey, StoredState]:
    """The stored revision, updated_at and pending change of each key that exists (one query)."""
    if not keys:
        return {}
    records = await conn.fetch(
        """SELECT o.token_id, o.checkout_form_id, o.revision, o.updated_at, o.pending_change
        FROM unnest($1::uuid[], $2::text[]) AS k(token_id, checkout_form_id)
        JOIN orders o USING (token_id, checkout_form_id)""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {
        (r["token_id"], r["checkout_form_id"]): StoredState(
            r["revision"], r["updated_at"], r["pending_change"]
        )
        for r in records
    }


async def fetch_stored_revisions(
    conn: asyncpg.Connection, revisions: Sequence[tuple[UUID, str, str]]
) -> set[tuple[UUID, str, str]]:
    """Which of the given (token, form, revision) triples `order_revisions` already holds."""
    if not revisions:
        return set()
    records = await conn.fetch(
        """SELECT r.token_id, r.checkout_form_id, r.revision
        FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(token_id, checkout_form_id, revision)
        JOIN order_revisions r USING (token_id, checkout_form_id, revision)""",
        [r[0] for r in revisions],
        [r[1] for r in revisions],
        [r[2] for r in revisions],
    )
    return {(r["token_id"], r["checkout_form_id"], r["revision"]) for r in records}


# Line item ids travel as one JSON array text per row because unnest() cannot take a ragged text[][];
# PostgreSQL expands it (tiny next to the form).
_UPSERT_ORDERS = """
INSERT INTO orders AS o (token_id, user_id, checkout_form_id, revision, status, fulfillment_status,
    buyer_login, bought_at, updated_at, total_amount, currency, line_item_ids, order_data, source,
    first_seen_at, last_synced_at, pending_change)
SELECT s.token_id, s.user_id, s.checkout_form_id, s.revision, s.status, s.fulfillment_status,
    s.buyer_login, s.bought_at, s.updated_at, s.total_amount, s.currency,
    ARRAY(SELECT jsonb_array_elements_text(s.line_item_ids::jsonb)), s.order_data::jsonb, s.source,
    s.fetched_at, s.fetched_at, 'created'
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::timestamptz[], $9::timestamptz[], $10::numeric[], $11::text[], $12::text[], $13::text[],
    $14::text[], $15::timestamptz[])
    AS s(token_id, user_id, checkout_form_id, revision, status, fulfillment_status, buyer_login,
    bought_at, updated_at, total_amount, currency, line_item_ids, order_data, source, fetched_at)
ON CONFLICT (token_id, checkout_form_id) DO UPDATE SET
    user_id = EXCLUDED.user_id, revision = EXCLUDED.revision, status = EXCLUDED.status,
    fulfillment_status = EXCLUDED.fulfillment_status, buyer_login = EXCLUDED.buyer_login,
    bought_at = EXCLUDED.bought_at, updated_at = EXCLUDED.updated_at,
    total_amount = EXCLUDED.total_amount, currency = EXCLUDED.currency,
    line_item_ids = EXCLUDED.line_item_ids, order_data = EXCLUDED.order_data, source = EXCLUDED.source,
    last_synced_at = EXCLUDED.last_synced_at,
    -- a creation nobody has heard of yet stays a creation
    pending_change = CASE WHEN o.pending_change = 'created' THEN 'created' ELSE 'updated' END
WHERE o.revision IS DISTINCT FROM EXCLUDED.revision
    AND (o.updated_at IS NULL OR EXCLUDED.updated_at >= o.updated_at)
RETURNING o.token_id, o.user_id, o.checkout_form_id, o.revision, o.pending_change, o.updated_at,
    o.last_synced_at, o.source, o.superseded_at, o.superseded_by, o.missing_upstream_since,
    (o.xmax = 0) AS inserted"""


async def upsert_orders(
    conn: asyncpg.Connection, rows: Sequence[OrderRow], *, line_item_json: Sequence[str]
) -> tuple[list[ChangedOrder], list[OrderKey]]:
    """Conditionally upsert; returns the changed rows and the keys that were newly inserted."""
    if not rows:
        return [], []
    records = await conn.fetch(
        _UPSERT_ORDERS,
        [r.token_id for r in rows],
        [r.user_id for r in rows],
        [r.checkout_form_id for r in rows],
        [r.revision for r in rows],
        [r.status for r in rows],
        [r.fulfillment_status for r in rows],
        [r.buyer_login for r in rows],
        [r.bought_at for r in rows],
        [r.updated_at for r in rows],
        [r.total_amount for r in rows],
        [r.currency for r in rows],
        list(line_item_json),
        [r.order_json for r in rows],
        [r.source for r in rows],
        [r.fetched_at for r in rows],
    )
    by_key = {(r.token_id, r.checkout_form_id): r for r in rows}
    changed = []
    inserted = []
    for record in records:
        key = (record["token_id"], record["checkout_form_id"])
        changed.append(_changed(record, order_json=by_key[key].order_json, seller_id=None))
        if record["inserted"]:
            inserted.append(key)
    return changed, inserted


async def insert_revisions(conn: asyncpg.Connection, rows: Sequence[OrderRow]) -> int:
    """Append revisions to the history; already stored ones are skipped. Returns how many were new."""
    if not rows:
        return 0
    records = await conn.fetch(
        """INSERT INTO order_revisions (token_id, checkout_form_id, revision, updated_at, order_data,
            captured_at, source)
        SELECT s.token_id, s.checkout_form_id, s.revision, s.updated_at, s.order_data::jsonb,
            s.captured_at, s.source
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
            $6::timestamptz[], $7::text[])
            AS s(token_id, checkout_form_id, revision, updated_at, order_data, captured_at, source)
        ON CONFLICT (token_id, checkout_form_id, revision) DO NOTHING
        RETURNING 1""",
        [r.token_id for r in rows],
        [r.checkout_form_id for r in rows],
        [r.revision for r in rows],
        [r.updated_at for r in rows],
        [r.order_json for r in rows],
        [r.fetched_at for r in rows],
        [r.source for r in rows],
    )
    return len(records)


async def mark_gone(
    conn: asyncpg.Connection, gone: Sequence[tuple[UUID, str, str, datetime]]
) -> list[ChangedOrder]:
    """Mark (token, form, reason, seen_at) as superseded (merged) or missing upstream (purged), once."""
    if not gone:
        return []
    records = await conn.fetch(
        """UPDATE orders AS o SET
            superseded_at = CASE WHEN g.reason = 'merged' THEN g.seen_at ELSE o.superseded_at END,
            missing_upstream_since = CASE WHEN g.reason = 'purged' THEN g.seen_at
                ELSE o.missing_upstream_since END,
            pending_change = CASE WHEN g.reason = 'merged' THEN 'superseded'
                WHEN o.pending_change IS NOT NULL THEN o.pending_change ELSE 'updated' END
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
            AS g(token_id, checkout_form_id, reason, seen_at)
        WHERE o.token_id = g.token_id AND o.checkout_form_id = g.checkout_form_id
            AND ((g.reason = 'merged' AND o.superseded_at IS NULL)
                OR (g.reason = 'purged' AND o.missing_upstream_since IS NULL))
        RETURNING o.token_id, o.user_id, o.checkout_form_id, o.revision, o.pending_change, o.updated_at,
    o.last_synced_at, o.source, o.superseded_at, o.superseded_by, o.missing_upstream_since,
    o.order_data::text AS order_json""",
        [g[0] for g in gone],
        [g[1] for g in gone],
        [g[2] for g in gone],
        [g[3] for g in gone],
    )
    return [_changed(r, order_json=r["order_json"], seller_id=None) for r in records]


async def link_successors(
    conn: asyncpg.Connection, created: Sequence[tuple[UUID, str, Sequence[str]]], *, now: datetime
) -> list[ChangedOrder]:
    """Orders of the same token sharing a line item with a newly created one are superseded by it."""
    if not created:
        return []
    # One GIN lookup with every item of the batch finds the candidates (the new orders among them); the
    # pairing is done here, linear in the batch, instead of a join that compares every pair of orders.
    items = sorted({item for _, _, order_items in created for item in order_items})
    candidates = await conn.fetch(
        """SELECT id, token_id, checkout_form_id, line_item_ids FROM orders
        WHERE line_item_ids && $1::text[] AND token_id = ANY($2::uuid[]) AND superseded_by IS NULL""",
        items,
        list({token for token, _, _ in created}),
    )
    successors_by_item: dict[tuple[UUID, str], list[tuple[str, frozenset[str]]]] = {}
    for token, form, order_items in created:
        for item in order_items:
            successors_by_item.setdefault((token, item), []).append((form, frozenset(order_items)))
    links: dict[int, str] = {}
    for candidate in candidates:
        held = frozenset(candidate["line_item_ids"])
        for item in held:
            for form, successor_items in successors_by_item.get((candidate["token_id"], item), []):
                # A successor holds every line item of the forms it replaces: an order that already holds
                # all of the new one's items is its successor (both may come in one batch), not its
                # predecessor.
                if form != candidate["checkout_form_id"] and not held >= successor_items:
                    links.setdefault(candidate["id"], form)
    if not links:
        return []
    records = await conn.fetch(
        """UPDATE orders AS o SET superseded_at = coalesce(o.superseded_at, $3::timestamptz),
            superseded_by = l.successor, pending_change = 'superseded'
        FROM unnest($1::bigint[], $2::text[]) AS l(id, successor)
        WHERE o.id = l.id
        RETURNING o.token_id, o.user_id, o.checkout_form_id, o.revision, o.pending_change, o.updated_at,
    o.last_synced_at, o.source, o.superseded_at, o.superseded_by, o.missing_upstream_since,
    o.order_data::text AS order_json""",
        list(links),
        list(links.values()),
        now,
    )
    return [_changed(r, order_json=r["order_json"], seller_id=None) for r in records]


async def fetch_pending_changes(
    conn: asyncpg.Connection, *, keys: Sequence[OrderKey] | None = None, limit: int = 1000
) -> list[ChangedOrder]:
    """Rows whose change is not yet acknowledged by `allegro.orders` (all, or only the given keys)."""
    # orders has no seller_id column: the seller comes from the token row when it is still there.
    query = """SELECT o.token_id, o.user_id, o.checkout_form_id, o.revision, o.pending_change, o.updated_at,
    o.last_synced_at, o.source, o.superseded_at, o.superseded_by, o.missing_upstream_since,
    o.order_data::text AS order_json, ut.seller_id AS seller_id
        FROM orders o LEFT JOIN user_tokens ut ON ut.id = o.token_id"""
    args: list[Any]
    if keys is None:
        query += " WHERE o.pending_change IS NOT NULL ORDER BY o.id LIMIT $1"
        args = [limit]
    else:
        query += """ JOIN unnest($1::uuid[], $2::text[]) AS k(token_id, checkout_form_id)
            ON k.token_id = o.token_id AND k.checkout_form_id = o.checkout_form_id
            WHERE o.pending_change IS NOT NULL"""
        args = [[k[0] for k in keys], [k[1] for k in keys]]
    records = await conn.fetch(query, *args)
    return [_changed(r, order_json=r["order_json"], seller_id=r["seller_id"]) for r in records]


async def clear_pending_changes(conn: asyncpg.Connection, published: Sequence[ChangedOrder]) -> int:
    """Forget the outbox entries whose message was acknowledged, unless the row changed again since."""
    if not published:
        return 0
    result: str = await conn.execute(
        """UPDATE orders AS o SET pending_change = NULL
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS p(token_id, checkout_form_id,
            revision, change)
        WHERE o.token_id = p.token_id AND o.checkout_form_id = p.checkout_form_id
            AND o.revision = p.revision AND o.pending_change = p.change""",
        [c.token_id for c in published],
        [c.checkout_form_id for c in published],
        [c.revision for c in published],
        [c.change for c in published],
    )
    return int(result.rsplit(" ", 1)[-1])
