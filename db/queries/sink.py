"""Write-side SQL of the snapshot sink, on a plain asyncpg connection (the processor's hot path).

Every statement is set-based: parallel arrays go in through `unnest()`, one round trip per statement
whatever the batch size. The checkout form travels as its exact JSON text, stored as it is
(`order_json`, the document of record) with its SHA-256 (`content_hash`), and cast to JSONB inside the
statement for the current version's query copy (`orders.order_data`, from `jsonb_text` where jsonb
refuses the text of record: `core.documents`). The history keeps the text alone: a second jsonb copy per
revision cost the first load about a tenth of its rate, for queries nobody runs on history (whoever does
casts `order_json`). Callers first ask `fetch_stored_state` / `fetch_stored_contents` and drop contents
already stored before they send a form.

Which stored version is current is the caller's decision (`processors.newness`); the upsert only makes
sure the row it replaces is still the one the caller decided against (compare-and-set on the content
hash), and reports the keys where another writer got there first.

`publish_outbox` is a transactional outbox: the transaction that makes changes also records them (one
narrow row per batch), and the row is deleted once Kafka has acknowledged the messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
import orjson

from core.contract import RecordContent
from core.order_fields import KEY, NAMES, ORDER_FIELDS, OWNER, STORED, VERSION
from db.engine import asyncpg_dsn


async def create_pool(database_url: str, *, min_size: int = 0, max_size: int = 10) -> asyncpg.Pool:
    """Connections for the statements below.

    Every lookup here goes by a key some index covers, so sequential scans are priced out. A new
    database's first backfill runs before autovacuum has counted any row, and with the empty tables'
    statistics the planner scanned `orders` once per looked-up key: a batch took 3-19 s instead of
    0.25 s once 18,000 orders were stored. JIT is off: these statements run for milliseconds, and the
    priced-out plans' estimates would cross its threshold."""
    pool = await asyncpg.create_pool(
        asyncpg_dsn(database_url),
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        server_settings={"enable_seqscan": "off", "jit": "off"},
    )
    return pool


class OrderKey(NamedTuple):
    """One order: a form of one token."""

    token_id: UUID
    checkout_form_id: str


class ContentKey(NamedTuple):
    """One row of the history: a content of an order's revision. The hash is None only in outbox rows
    written before migration 0006, which named revisions by label."""

    token_id: UUID
    checkout_form_id: str
    revision: str
    content_hash: bytes | None

    @property
    def order(self) -> OrderKey:
        """The order this content belongs to."""
        return OrderKey(self.token_id, self.checkout_form_id)


class Gone(NamedTuple):
    """A form Allegro no longer answers for: `merged` or `purged`, decided at `seen_at`."""

    token_id: UUID
    checkout_form_id: str
    reason: str
    seen_at: datetime


class Fetched(NamedTuple):
    """A form that answered at `fetched_at`."""

    token_id: UUID
    checkout_form_id: str
    fetched_at: datetime


class Link(NamedTuple):
    """A merge: `predecessor` was replaced by `successor`, forms of one token."""

    token_id: UUID
    predecessor: str
    successor: str


class ChangeKey(NamedTuple):
    """A change recorded in the outbox: the order and its change type."""

    token_id: UUID
    checkout_form_id: str
    change: str


@dataclass(frozen=True)
class StoredState:
    """What the database holds for one order key before a batch is written: the current version."""

    revision: str
    updated_at: datetime | None
    captured_at: datetime
    content_hash: bytes | None
    # The latest gone mark a later fetch of the form would disprove (missing upstream, or superseded with
    # no successor); None when the order carries none.
    marked_at: datetime | None = None


_LINE_ITEMS = NAMES.index("line_item_ids")


@dataclass(frozen=True)
class OrderRow:
    """One order version to write (the newest of its key in a batch, or an older revision for history);
    `fields` holds the order's fields in `core.order_fields.ORDER_FIELDS` order."""

    token_id: UUID
    user_id: str
    seller_id: str
    checkout_form_id: str
    revision: str
    updated_at: datetime | None
    fields: tuple[Any, ...]
    order_json: str
    source: str
    fetched_at: datetime
    content_hash: bytes
    # The jsonb query copy's text when it must differ from order_json (None: order_json itself).
    jsonb_text: str | None = None

    @property
    def key(self) -> OrderKey:
        """(token, form)."""
        return OrderKey(self.token_id, self.checkout_form_id)

    @property
    def content_key(self) -> ContentKey:
        """(token, form, revision, content hash)."""
        return ContentKey(self.token_id, self.checkout_form_id, self.revision, self.content_hash)

    @property
    def line_item_ids(self) -> list[str]:
        """The form's line item ids (what the merge check looks up)."""
        items: list[str] = self.fields[_LINE_ITEMS]
        return items


@dataclass(frozen=True)
class ChangedOrder:
    """A row a statement really changed, as RETURNING reported it: what `allegro.orders` publishes;
    `fields` as in `OrderRow`."""

    token_id: UUID
    user_id: str
    seller_id: str | None
    checkout_form_id: str
    revision: str
    change: str
    updated_at: datetime | None
    captured_at: datetime
    first_seen_at: datetime
    source: str
    superseded_at: datetime | None
    superseded_by: str | None
    missing_upstream_since: datetime | None
    fields: tuple[Any, ...]
    order_json: str


@dataclass(frozen=True)
class NewRevision:
    """A revision that entered the history, as `allegro.order-revisions` publishes it."""

    content: RecordContent
    order_json: str
    content_hash: bytes | None


# The stored text of record; rows from before migration 0006 have only their jsonb copy.
_DOCUMENT = "coalesce({0}.order_json, {0}.order_data::text)"

# Every statement that changes an order returns these columns of it (as `o`).
_CHANGED_COLUMNS = ", ".join(f"o.{name}" for name in (*KEY, *OWNER, *VERSION, *STORED, *NAMES))


def _fields(record: asyncpg.Record) -> tuple[Any, ...]:
    return tuple(list(record[f.name] or ()) if f.is_list else record[f.name] for f in ORDER_FIELDS)


def _changed(record: asyncpg.Record, *, change: str, order_json: str) -> ChangedOrder:
    return ChangedOrder(
        token_id=record["token_id"],
        user_id=record["user_id"],
        seller_id=record["seller_id"],
        checkout_form_id=record["checkout_form_id"],
        revision=record["revision"],
        change=change,
        updated_at=record["updated_at"],
        captured_at=record["last_synced_at"],
        first_seen_at=record["first_seen_at"],
        source=record["source"],
        superseded_at=record["superseded_at"],
        superseded_by=record["superseded_by"],
        missing_upstream_since=record["missing_upstream_since"],
        fields=_fields(record),
        order_json=order_json,
    )


# Gone marks a fetch of the form at `{0}.fetched_at` disproves: a missing-upstream mark, or a superseded
# mark without a successor (a merge that names its successor stays), set before that fetch. Every statement
# that clears marks uses these; `_MARKED_AT` is what the caller's rule compares a fetch with
# (`processors.newness.disproved_marks`).
_MARKED_AT = "GREATEST(o.missing_upstream_since, CASE WHEN o.superseded_by IS NULL THEN o.superseded_at END)"
_CLEAR_MARKS = """superseded_at = CASE WHEN o.superseded_by IS NULL AND o.superseded_at < {0}.fetched_at
            THEN NULL ELSE o.superseded_at END,
        missing_upstream_since = CASE WHEN o.missing_upstream_since < {0}.fetched_at THEN NULL
            ELSE o.missing_upstream_since END"""


# The key lookups below are LATERAL subqueries ending in LIMIT 1, so PostgreSQL probes the index once per
# key (a nested loop) instead of flattening them into a join: flattened, PostgreSQL chose a merge join
# that read every stored order of the batch's sellers, a cost growing with the backup's size.


async def fetch_stored_state(
    conn: asyncpg.Connection, keys: Sequence[OrderKey]
) -> dict[OrderKey, StoredState]:
    """The current version of each key that exists (one query)."""
    if not keys:
        return {}
    records = await conn.fetch(
        f"""SELECT o.token_id, o.checkout_form_id, o.revision, o.updated_at, o.last_synced_at, o.content_hash,
            {_MARKED_AT} AS marked_at
        FROM unnest($1::uuid[], $2::text[]) AS k(token_id, checkout_form_id)
        CROSS JOIN LATERAL (SELECT * FROM orders o
            WHERE o.token_id = k.token_id AND o.checkout_form_id = k.checkout_form_id LIMIT 1) AS o""",
        [k.token_id for k in keys],
        [k.checkout_form_id for k in keys],
    )
    return {
        OrderKey(r["token_id"], r["checkout_form_id"]): StoredState(
            r["revision"], r["updated_at"], r["last_synced_at"], r["content_hash"], r["marked_at"]
        )
        for r in records
    }


async def fetch_stored_contents(conn: asyncpg.Connection, keys: Sequence[ContentKey]) -> set[ContentKey]:
    """Which of the given contents `order_revisions` already holds."""
    if not keys:
        return set()
    records = await conn.fetch(
        """SELECT r.token_id, r.checkout_form_id, r.revision, r.content_hash
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])
            AS k(token_id, checkout_form_id, revision, content_hash)
        CROSS JOIN LATERAL (SELECT * FROM order_revisions r WHERE r.token_id = k.token_id
            AND r.checkout_form_id = k.checkout_form_id AND r.revision = k.revision
            AND r.content_hash = k.content_hash LIMIT 1) AS r""",
        *_content_arrays(keys),
    )
    return {
        ContentKey(r["token_id"], r["checkout_form_id"], r["revision"], r["content_hash"]) for r in records
    }


# Line item ids travel as one JSON array text per row because unnest() cannot take a ragged text[][].
# New keys are inserted, stored ones updated only while they still hold the content the caller decided
# against (`expected_hash`, `expected_revision`): a key another writer changed (or inserted) meanwhile is
# missing from the result, and the caller retries. The history insert takes the text from the written rows
# (joining it back to `s` sorted the batch's texts on disk).
# What the upsert sends, one array per column: (name, element type). The order's fields travel in the
# middle, a list as JSON text.
_SENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("token_id", "uuid"),
    ("user_id", "text"),
    ("seller_id", "text"),
    ("checkout_form_id", "text"),
    ("revision", "text"),
    ("updated_at", "timestamptz"),
    *((f.name, "text" if f.is_list else f.sql) for f in ORDER_FIELDS),
    ("order_json", "text"),
    ("source", "text"),
    ("fetched_at", "timestamptz"),
    ("content_hash", "bytea"),
    ("jsonb_text", "text"),
    ("stored", "bool"),
    ("expected_revision", "text"),
    ("expected_hash", "bytea"),
    ("first_seen_at", "timestamptz"),
)
_SENT = "SELECT * FROM unnest({}) AS s({})".format(
    ", ".join(f"${number}::{kind}[]" for number, (_, kind) in enumerate(_SENT_COLUMNS, 1)),
    ", ".join(name for name, _ in _SENT_COLUMNS),
)
# The order's fields as the statements write them (a list from its JSON text).
_FIELD_VALUES = {
    f.name: f"ARRAY(SELECT jsonb_array_elements_text(s.{f.name}::jsonb))" if f.is_list else f"s.{f.name}"
    for f in ORDER_FIELDS
}
_UPSERT_ORDERS = f"""
WITH s AS ({_SENT}), ins AS (
    INSERT INTO orders AS o (token_id, user_id, seller_id, checkout_form_id, revision, updated_at,
        {", ".join(_FIELD_VALUES)}, order_json, content_hash, order_data, source, first_seen_at,
        last_synced_at)
    SELECT s.token_id, s.user_id, s.seller_id, s.checkout_form_id, s.revision, s.updated_at,
        {", ".join(_FIELD_VALUES.values())}, s.order_json, s.content_hash,
        nullif(coalesce(s.jsonb_text, s.order_json), '')::jsonb, s.source, s.first_seen_at, s.fetched_at
    FROM s WHERE NOT s.stored
    ON CONFLICT (token_id, checkout_form_id) DO NOTHING
    RETURNING {_CHANGED_COLUMNS}, o.content_hash, o.order_json, true AS inserted
), upd AS (
    UPDATE orders AS o SET
        user_id = s.user_id, seller_id = s.seller_id, revision = s.revision, updated_at = s.updated_at,
        {", ".join(f"{name} = {value}" for name, value in _FIELD_VALUES.items())},
        order_json = s.order_json, content_hash = s.content_hash,
        order_data = nullif(coalesce(s.jsonb_text, s.order_json), '')::jsonb, source = s.source,
        last_synced_at = s.fetched_at,
        -- Fetched after it was marked gone, the form answers again: a mark without a successor goes.
        {_CLEAR_MARKS.format("s")}
    FROM s
    WHERE s.stored AND o.token_id = s.token_id AND o.checkout_form_id = s.checkout_form_id
        AND o.revision = s.expected_revision AND o.content_hash IS NOT DISTINCT FROM s.expected_hash
    RETURNING {_CHANGED_COLUMNS}, o.content_hash, o.order_json, false AS inserted
), up AS (
    SELECT * FROM ins UNION ALL SELECT * FROM upd
), items AS (
    -- The merge check's lookup (`find_merge_links`); a form's line items do not change, so rows are only
    -- ever added.
    INSERT INTO order_line_items (token_id, line_item_id, checkout_form_id)
    SELECT up.token_id, unnest(up.line_item_ids), up.checkout_form_id FROM up WHERE up.inserted
    ON CONFLICT DO NOTHING
), rev AS (
    INSERT INTO order_revisions (token_id, checkout_form_id, revision, updated_at, order_json, content_hash,
        captured_at, source)
    SELECT up.token_id, up.checkout_form_id, up.revision, up.updated_at, up.order_json, up.content_hash,
        up.last_synced_at, up.source
    FROM up
    ON CONFLICT (token_id, checkout_form_id, revision, content_hash) DO NOTHING
    RETURNING token_id, checkout_form_id, content_hash
)
-- Only what the batch's rows do not tell: the other columns hold what was sent (`upsert_orders`).
SELECT up.token_id, up.checkout_form_id, up.first_seen_at, up.superseded_at, up.superseded_by,
    up.missing_upstream_since, up.inserted, rev.content_hash IS NOT NULL AS revision_added
FROM up LEFT JOIN rev USING (token_id, checkout_form_id, content_hash)"""


def _field_arrays(rows: Sequence[OrderRow]) -> list[Sequence[Any]]:
    """One array per order field, in `ORDER_FIELDS` order (a list field as JSON texts)."""
    columns = zip(*(row.fields for row in rows), strict=True)
    return [
        [orjson.dumps(value).decode() for value in column] if f.is_list else list(column)
        for f, column in zip(ORDER_FIELDS, columns, strict=True)
    ]


@dataclass(frozen=True)
class UpsertResult:
    """What the upsert changed: orders (with their change type), new keys, new revisions, and the keys
    another writer changed since the caller read them (nothing was written for those)."""

    changes: list[ChangedOrder]
    inserted: list[OrderKey]
    revisions: list[ContentKey]
    lost: list[OrderKey]


async def upsert_orders(
    conn: asyncpg.Connection,
    rows: Sequence[OrderRow],
    replaced: Mapping[OrderKey, StoredState],
    first_seen: Mapping[OrderKey, datetime] | None = None,
) -> UpsertResult:
    """Write each row as its order's current version, adding it to the history in passing. `replaced`
    holds the stored version each row replaces (keys absent from it are new); `first_seen` when new
    keys were first seen (default: their row's capture time)."""
    if not rows:
        return UpsertResult([], [], [], [])
    expected = [replaced.get(r.key) for r in rows]
    records = await conn.fetch(
        _UPSERT_ORDERS,
        [r.token_id for r in rows],
        [r.user_id for r in rows],
        [r.seller_id for r in rows],
        [r.checkout_form_id for r in rows],
        [r.revision for r in rows],
        [r.updated_at for r in rows],
        *_field_arrays(rows),
        [r.order_json for r in rows],
        [r.source for r in rows],
        [r.fetched_at for r in rows],
        [r.content_hash for r in rows],
        [r.jsonb_text for r in rows],
        [e is not None for e in expected],
        [e.revision if e else None for e in expected],
        [e.content_hash if e else None for e in expected],
        [(first_seen or {}).get(r.key, r.fetched_at) for r in rows],
    )
    by_key = {r.key: r for r in rows}
    result = UpsertResult([], [], [], [])
    for record in records:
        key = OrderKey(record["token_id"], record["checkout_form_id"])
        row = by_key.pop(key)
        result.changes.append(_upserted(row, record))
        if record["inserted"]:
            result.inserted.append(key)
        if record["revision_added"]:
            result.revisions.append(
                ContentKey(key.token_id, key.checkout_form_id, row.revision, row.content_hash)
            )
    result.lost.extend(by_key)
    return result


def _upserted(row: OrderRow, record: asyncpg.Record) -> ChangedOrder:
    """The change an upsert made: the row as sent (decoding the written values back from PostgreSQL had
    cost the worker about 3 % of its time), with what only the stored order knows."""
    return ChangedOrder(
        token_id=record["token_id"],  # asyncpg's UUID: formatted in C when the change is published
        user_id=row.user_id,
        seller_id=row.seller_id,
        checkout_form_id=row.checkout_form_id,
        revision=row.revision,
        change="created" if record["inserted"] else "updated",
        updated_at=row.updated_at,
        captured_at=row.fetched_at,
        first_seen_at=record["first_seen_at"],
        source=row.source,
        superseded_at=record["superseded_at"],
        superseded_by=record["superseded_by"],
        missing_upstream_since=record["missing_upstream_since"],
        fields=row.fields,
        order_json=row.order_json,
    )


async def insert_revisions(conn: asyncpg.Connection, rows: Sequence[OrderRow]) -> list[ContentKey]:
    """Append contents that are not current to the history; stored ones are skipped. Returns the new ones."""
    if not rows:
        return []
    records = await conn.fetch(
        """INSERT INTO order_revisions (token_id, checkout_form_id, revision, updated_at, order_json,
            content_hash, captured_at, source)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
            $6::bytea[], $7::timestamptz[], $8::text[])
        ON CONFLICT (token_id, checkout_form_id, revision, content_hash) DO NOTHING
        RETURNING token_id, checkout_form_id, revision, content_hash""",
        [r.token_id for r in rows],
        [r.checkout_form_id for r in rows],
        [r.revision for r in rows],
        [r.updated_at for r in rows],
        [r.order_json for r in rows],
        [r.content_hash for r in rows],
        [r.fetched_at for r in rows],
        [r.source for r in rows],
    )
    return [
        ContentKey(r["token_id"], r["checkout_form_id"], r["revision"], r["content_hash"]) for r in records
    ]


async def mark_gone(conn: asyncpg.Connection, gone: Sequence[Gone]) -> list[ChangedOrder]:
    """Mark forms as superseded (merged) or missing upstream (purged), once.

    A form we never stored has nothing to mark: its gone snapshot changes nothing.
    """
    if not gone:
        return []
    records = await conn.fetch(
        f"""UPDATE orders AS o SET
            superseded_at = CASE WHEN g.reason = 'merged' THEN g.seen_at ELSE o.superseded_at END,
            missing_upstream_since = CASE WHEN g.reason = 'purged' THEN g.seen_at
                ELSE o.missing_upstream_since END
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
            AS g(token_id, checkout_form_id, reason, seen_at)
        WHERE o.token_id = g.token_id AND o.checkout_form_id = g.checkout_form_id
            AND ((g.reason = 'merged' AND o.superseded_at IS NULL)
                OR (g.reason = 'purged' AND o.missing_upstream_since IS NULL))
        RETURNING {_CHANGED_COLUMNS}, g.reason, {_DOCUMENT.format("o")} AS order_json""",
        [g.token_id for g in gone],
        [g.checkout_form_id for g in gone],
        [g.reason for g in gone],
        [g.seen_at for g in gone],
    )
    return [
        _changed(r, change="superseded" if r["reason"] == "merged" else "updated", order_json=r["order_json"])
        for r in records
    ]


async def clear_disproved_marks(conn: asyncpg.Connection, fetched: Sequence[Fetched]) -> list[ChangedOrder]:
    """Clear the gone marks that a fetch disproves: the form answered at `fetched_at`,
    after it was marked missing upstream or superseded with no successor, with the content already stored
    (a newer content clears them in the upsert). A merge's mark, which names its successor, stays."""
    if not fetched:
        return []
    records = await conn.fetch(
        f"""UPDATE orders AS o SET
            {_CLEAR_MARKS.format("f")},
            last_synced_at = GREATEST(o.last_synced_at, f.fetched_at)
        FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS f(token_id, checkout_form_id, fetched_at)
        WHERE o.token_id = f.token_id AND o.checkout_form_id = f.checkout_form_id
            AND {_MARKED_AT} < f.fetched_at
        RETURNING {_CHANGED_COLUMNS}, {_DOCUMENT.format("o")} AS order_json""",
        [f.token_id for f in fetched],
        [f.checkout_form_id for f in fetched],
        [f.fetched_at for f in fetched],
    )
    return [_changed(r, change="updated", order_json=r["order_json"]) for r in records]


async def lock_merge_checks(conn: asyncpg.Connection, tokens: Sequence[UUID]) -> None:
    """Take each token's merge-check lock until the transaction ends (in the given, sorted, order)."""
    if tokens:
        keys = [int.from_bytes(token.bytes[:8], "big", signed=True) for token in tokens]
        await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", keys)


async def find_merge_links(
    conn: asyncpg.Connection, new_orders: Sequence[tuple[UUID, str, Sequence[str]]]
) -> list[Link]:
    """Merges that orders just written take part in, as successor or as predecessor.

    Called after the new orders are written, so it sees them together with every stored order that shares
    a line item with them. A merge replaces several forms with one that holds all their line items, so
    where two forms share a line item, the one holding strictly more items is the other's successor.
    Seeing both directions makes the result independent of which form was stored first.
    """
    keys = sorted({(token, item, form) for token, form, items in new_orders for item in items})
    if not keys:
        return []
    # Only other forms are read from `orders`: without a merge, a new line item is held by its own order
    # alone, and the lookup ends in the narrow table.
    records = await conn.fetch(
        """SELECT DISTINCT o.token_id, o.checkout_form_id, o.line_item_ids
        FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(token_id, line_item_id, checkout_form_id)
        -- several forms may hold an item: OFFSET 0 (not LIMIT 1) keeps this a per-key probe
        CROSS JOIN LATERAL (SELECT * FROM order_line_items li WHERE li.token_id = k.token_id
            AND li.line_item_id = k.line_item_id AND li.checkout_form_id <> k.checkout_form_id OFFSET 0) AS li
        CROSS JOIN LATERAL (SELECT * FROM orders o WHERE o.token_id = li.token_id
            AND o.checkout_form_id = li.checkout_form_id LIMIT 1) AS o
        WHERE o.superseded_by IS NULL""",
        [token for token, _, _ in keys],
        [item for _, item, _ in keys],
        [form for _, _, form in keys],
    )
    if not records:
        return []
    held = {(r["token_id"], r["checkout_form_id"]): frozenset(r["line_item_ids"] or ()) for r in records}
    held |= {(token, form): frozenset(items) for token, form, items in new_orders}
    by_item: dict[tuple[UUID, str], list[str]] = {}
    for (token, form), items in sorted(held.items()):
        for item in items:
            by_item.setdefault((token, item), []).append(form)
    links: dict[tuple[UUID, str], str] = {}
    for token, form, _ in new_orders:
        mine = held[(token, form)]
        for item in sorted(mine):
            for other in by_item[(token, item)]:
                theirs = held[(token, other)]
                if theirs > mine:
                    links.setdefault((token, form), other)
                elif mine > theirs:
                    links.setdefault((token, other), form)
    return [Link(token, predecessor, successor) for (token, predecessor), successor in sorted(links.items())]


async def link_successors(
    conn: asyncpg.Connection, links: Sequence[Link], *, now: datetime
) -> list[ChangedOrder]:
    """Mark each predecessor superseded by its successor form."""
    if not links:
        return []
    records = await conn.fetch(
        f"""UPDATE orders AS o SET superseded_at = coalesce(o.superseded_at, $4::timestamptz),
            superseded_by = l.successor
        FROM unnest($1::uuid[], $2::text[], $3::text[]) AS l(token_id, predecessor, successor)
        WHERE o.token_id = l.token_id AND o.checkout_form_id = l.predecessor
            AND o.superseded_by IS DISTINCT FROM l.successor
        RETURNING {_CHANGED_COLUMNS}, {_DOCUMENT.format("o")} AS order_json""",
        [link.token_id for link in links],
        [link.predecessor for link in links],
        [link.successor for link in links],
        now,
    )
    return [_changed(r, change="superseded", order_json=r["order_json"]) for r in records]


async def record_outbox(
    conn: asyncpg.Connection, changes: Sequence[ChangedOrder], revisions: Sequence[ContentKey]
) -> int | None:
    """Record what this transaction changed (keys only); returns the outbox row id, None if nothing."""
    if not changes and not revisions:
        return None
    # A batch holds thousands of orders of a few sellers: each token is formatted once, not per row
    # (orjson cannot write asyncpg's own UUID type).
    tokens = {token: str(token) for token in {c.token_id for c in changes} | {k.token_id for k in revisions}}
    payload = orjson.dumps(
        {
            "changes": [[tokens[c.token_id], c.checkout_form_id, c.change] for c in changes],
            "revisions": [[tokens[t], f, r, h.hex() if h else None] for t, f, r, h in revisions],
        }
    ).decode()
    entry: int = await conn.fetchval("INSERT INTO publish_outbox (payload) VALUES ($1) RETURNING id", payload)
    return entry


async def delete_outbox(conn: asyncpg.Connection, entry: int) -> None:
    """Forget an outbox row once every message it stands for was acknowledged."""
    await conn.execute("DELETE FROM publish_outbox WHERE id = $1", entry)


async def last_outbox_entry(conn: asyncpg.Connection) -> int:
    """The newest outbox row's id (0 when there is none)."""
    last: int = await conn.fetchval("SELECT coalesce(max(id), 0) FROM publish_outbox")
    return last


async def oldest_outbox_entries(
    conn: asyncpg.Connection, *, up_to: int | None = None, limit: int = 100
) -> list[tuple[int, dict[str, Any]]]:
    """Outbox rows left by a publish that did not complete (ids up to `up_to`), oldest first."""
    records = await conn.fetch(
        "SELECT id, payload FROM publish_outbox WHERE $1::bigint IS NULL OR id <= $1 ORDER BY id LIMIT $2",
        up_to,
        limit,
    )
    return [(r["id"], orjson.loads(r["payload"])) for r in records]


async def fetch_changes(conn: asyncpg.Connection, changes: Sequence[ChangeKey]) -> list[ChangedOrder]:
    """The current state of orders whose change the outbox recorded, to publish them again."""
    if not changes:
        return []
    records = await conn.fetch(
        f"""SELECT {_CHANGED_COLUMNS}, k.change, {_DOCUMENT.format("o")} AS order_json
        FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(token_id, checkout_form_id, change)
        JOIN orders o ON o.token_id = k.token_id AND o.checkout_form_id = k.checkout_form_id""",
        [c.token_id for c in changes],
        [c.checkout_form_id for c in changes],
        [c.change for c in changes],
    )
    return [_changed(r, change=r["change"], order_json=r["order_json"]) for r in records]


async def fetch_revisions(conn: asyncpg.Connection, keys: Sequence[ContentKey]) -> list[NewRevision]:
    """Stored revisions by (token, form, revision, content hash), to publish them again; a key without a
    hash (an outbox row from before migration 0006) stands for every content of its revision."""
    if not keys:
        return []
    records = await conn.fetch(
        f"""SELECT r.token_id, r.checkout_form_id, r.revision, r.updated_at, r.captured_at, r.source,
            {_DOCUMENT.format("r")} AS order_json, r.content_hash
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])
            AS k(token_id, checkout_form_id, revision, content_hash)
        JOIN order_revisions r ON r.token_id = k.token_id AND r.checkout_form_id = k.checkout_form_id
            AND r.revision = k.revision AND (k.content_hash IS NULL OR r.content_hash = k.content_hash)""",
        *_content_arrays(keys),
    )
    return [NewRevision(RecordContent(*r[:6]), r["order_json"], r["content_hash"]) for r in records]


def _content_arrays(keys: Sequence[ContentKey]) -> list[list[Any]]:
    return [
        [k.token_id for k in keys],
        [k.checkout_form_id for k in keys],
        [k.revision for k in keys],
        [k.content_hash for k in keys],
    ]
