"""Order records in PostgreSQL: storing versions (worker and replay), reading them (API, exports), and a
checksum that shows a rebuild is exact.

Storing is order-independent, so a replay that meets the messages in another order (or a worker that
meets one twice) ends with the same rows:
- `order_record_versions` holds every distinct content of a record once, with the earliest fetch time
  any message gave it;
- `order_records` holds the content of the newest fetch (ties broken by the content hash), and the
  earliest fetch of the record at all.
The document is the JSON text as fetched; the query columns are read off it here (`derived_columns`).
Every function takes an asyncpg connection (or pool) and leaves transactions to the caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from core.order_records import OrderRecordMessage, RecordKind, tracking_key
from db.models import OrderRecord

# Tracking codes after which a parcel's history does not change (allegro_api.records.TRACKING_CODES).
FINAL_CODES = frozenset({"DELIVERED", "RETURNED"})

_STORE_VERSION = """
INSERT INTO order_record_versions AS v (token_id, checkout_form_id, kind, record_key, content_hash, user_id,
    document, first_fetched_at, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (token_id, checkout_form_id, kind, record_key, content_hash) DO UPDATE
    SET first_fetched_at = EXCLUDED.first_fetched_at, source = EXCLUDED.source
    WHERE (EXCLUDED.first_fetched_at, EXCLUDED.source) < (v.first_fetched_at, v.source)
"""

_NEWER = "(EXCLUDED.fetched_at, EXCLUDED.content_hash) > (r.fetched_at, r.content_hash)"
_STORE_CURRENT = f"""
INSERT INTO order_records AS r (token_id, checkout_form_id, kind, record_key, user_id, seller_id, document,
    content_hash, fetched_at, first_fetched_at, source, shipped_at, waybills, delivered_at, last_code)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13, $14)
ON CONFLICT (token_id, checkout_form_id, kind, record_key) DO UPDATE SET
    user_id = CASE WHEN {_NEWER} THEN EXCLUDED.user_id ELSE r.user_id END,
    seller_id = CASE WHEN {_NEWER} THEN EXCLUDED.seller_id ELSE r.seller_id END,
    document = CASE WHEN {_NEWER} THEN EXCLUDED.document ELSE r.document END,
    source = CASE WHEN {_NEWER} THEN EXCLUDED.source ELSE r.source END,
    shipped_at = CASE WHEN {_NEWER} THEN EXCLUDED.shipped_at ELSE r.shipped_at END,
    waybills = CASE WHEN {_NEWER} THEN EXCLUDED.waybills ELSE r.waybills END,
    delivered_at = CASE WHEN {_NEWER} THEN EXCLUDED.delivered_at ELSE r.delivered_at END,
    last_code = CASE WHEN {_NEWER} THEN EXCLUDED.last_code ELSE r.last_code END,
    content_hash = CASE WHEN {_NEWER} THEN EXCLUDED.content_hash ELSE r.content_hash END,
    fetched_at = greatest(r.fetched_at, EXCLUDED.fetched_at),
    first_fetched_at = least(r.first_fetched_at, EXCLUDED.first_fetched_at)
WHERE {_NEWER} OR EXCLUDED.fetched_at < r.first_fetched_at
"""  # noqa: S608 - a constant condition, values are parameters


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def derived_columns(kind: RecordKind, document: str) -> dict[str, Any]:
    """The query columns of a record: for shipments the earliest `createdAt` and every
    `{carrierId}:{waybill}`; for tracking the first DELIVERED `occurredAt` and the newest status code.

    The stdlib decoder reads any valid JSON text (escaped lone surrogates included); a document that is not
    the expected shape gives empty columns, never an error (the document itself is kept)."""
    columns: dict[str, Any] = {"shipped_at": None, "waybills": [], "delivered_at": None, "last_code": None}
    try:
        data = json.loads(document)
    except ValueError:
        return columns
    if not isinstance(data, dict):
        return columns
    if kind == "shipments":
        shipments = [s for s in data.get("shipments") or () if isinstance(s, dict)]
        created = [t for t in (_instant(s.get("createdAt")) for s in shipments) if t is not None]
        columns["shipped_at"] = min(created) if created else None
        columns["waybills"] = [
            tracking_key(str(s["carrierId"]), str(s["waybill"]))
            for s in shipments
            if s.get("carrierId") and s.get("waybill")
        ]
    elif kind == "tracking":
        statuses = [
            s for s in (data.get("trackingDetails") or {}).get("statuses") or () if isinstance(s, dict)
        ]
        delivered = [_instant(s.get("occurredAt")) for s in statuses if s.get("code") == "DELIVERED"]
        columns["delivered_at"] = next((t for t in delivered if t is not None), None)
        code = statuses[-1].get("code") if statuses else None
        columns["last_code"] = code if isinstance(code, str) else None
    return columns


def _rows(messages: Iterable[OrderRecordMessage]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    versions, current = [], []
    for m in messages:
        digest = bytes.fromhex(m.content_sha256)
        key = (m.token_id, m.checkout_form_id, m.kind, m.record_key)
        versions.append((*key, digest, m.user_id, m.document, m.fetched_at, m.source))
        derived = derived_columns(m.kind, m.document)
        current.append(
            (
                *key,
                m.user_id,
                m.seller_id or None,
                m.document,
                digest,
                m.fetched_at,
                m.source,
                derived["shipped_at"],
                derived["waybills"],
                derived["delivered_at"],
                derived["last_code"],
            )
        )
    return versions, current


async def store_records(connection: asyncpg.Connection, messages: Sequence[OrderRecordMessage]) -> None:
    """Store a batch of record messages (call inside a transaction); idempotent and order-independent."""
    if not messages:
        return
    # One statement per record and table, in a stable order so concurrent writers lock rows alike.
    ordered = sorted(messages, key=lambda m: (str(m.token_id), m.checkout_form_id, m.kind, m.record_key))
    versions, current = _rows(ordered)
    await connection.executemany(_STORE_VERSION, versions)
    await connection.executemany(_STORE_CURRENT, current)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record as stored: which, when, and its JSON text."""

    token_id: UUID
    checkout_form_id: str
    kind: str
    record_key: str
    document: str
    content_sha256: str
    fetched_at: datetime
    first_fetched_at: datetime
    source: str


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One distinct content a record had."""

    kind: str
    record_key: str
    document: str
    content_sha256: str
    first_fetched_at: datetime
    source: str


_CURRENT_COLUMNS = (
    "token_id, checkout_form_id, kind, record_key, document, encode(content_hash, 'hex'), fetched_at,"
    " first_fetched_at, source"
)


async def records_of_orders(
    connection: asyncpg.Connection | asyncpg.Pool,
    orders: Sequence[tuple[UUID, str]],
    kinds: Sequence[str],
) -> list[StoredRecord]:
    """The current records of these (token id, checkout form id) pairs and kinds; tracking by key."""
    if not orders or not kinds:
        return []
    rows = await connection.fetch(
        f"SELECT {_CURRENT_COLUMNS} FROM order_records"  # noqa: S608 - constant columns
        " WHERE (token_id, checkout_form_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
        " AND kind = ANY($3::text[]) ORDER BY token_id, checkout_form_id, kind, record_key",
        [token for token, _ in orders],
        [form for _, form in orders],
        list(kinds),
    )
    return [StoredRecord(*row) for row in rows]


async def record_versions(
    connection: asyncpg.Connection | asyncpg.Pool, token_id: UUID, checkout_form_id: str, kind: str
) -> list[StoredVersion]:
    """Every distinct content of an order's records of one kind, oldest first."""
    rows = await connection.fetch(
        "SELECT kind, record_key, document, encode(content_hash, 'hex'), first_fetched_at, source"
        " FROM order_record_versions WHERE token_id = $1 AND checkout_form_id = $2 AND kind = $3"
        " ORDER BY record_key, first_fetched_at, content_hash",
        token_id,
        checkout_form_id,
        kind,
    )
    return [StoredVersion(*row) for row in rows]


# The columns a rebuild must give back: all of them.
_CHECKSUMS = (
    (
        "order_records",
        "token_id, checkout_form_id, kind, record_key, user_id, seller_id, document, content_hash,"
        " fetched_at, first_fetched_at, source, shipped_at, waybills, delivered_at, last_code",
    ),
    (
        "order_record_versions",
        "token_id, checkout_form_id, kind, record_key, content_hash, user_id, document, first_fetched_at,"
        " source",
    ),
)


async def records_checksum(connection: asyncpg.Connection | asyncpg.Pool, token_id: UUID) -> str:
    """md5 over every column of a token's record rows, in key order:
    `order_records=<md5>/<rows> order_record_versions=<md5>/<rows>`."""
    parts = []
    for table, columns in _CHECKSUMS:
        digest, count = await connection.fetchrow(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')), count(*)"  # noqa: S608
            f" FROM (SELECT {columns} FROM {table} WHERE token_id = $1) AS t",
            token_id,
        )
        parts.append(f"{table}={digest}/{count}")
    return " ".join(parts)


async def delete_token_records(connection: asyncpg.Connection, token_id: UUID) -> None:
    """Delete a token's stored records (only before a forced rebuild from Kafka)."""
    await connection.execute("DELETE FROM order_records WHERE token_id = $1", token_id)
    await connection.execute("DELETE FROM order_record_versions WHERE token_id = $1", token_id)


def undelivered_condition(order_token: Any, order_form: Any, cutoff: datetime) -> ColumnElement[bool]:
    """Orders shipped (a shipment created) at or before `cutoff` of which some waybill has no DELIVERED
    tracking status stored: "shipped but not delivered after N days" with cutoff = now - N days.

    `order_token` and `order_form` are the outer query's token id and checkout form id columns."""
    shipments = aliased(OrderRecord, name="s")
    tracking = aliased(OrderRecord, name="t")
    waybill = func.unnest(shipments.waybills).table_valued("k").render_derived(name="w")
    delivered = (
        select(tracking.record_key)
        .where(
            tracking.token_id == shipments.token_id,
            tracking.checkout_form_id == shipments.checkout_form_id,
            tracking.kind == "tracking",
            tracking.record_key == waybill.c.k,
            tracking.delivered_at.is_not(None),
        )
        .correlate_except(tracking)
        .exists()
    )
    undelivered = select(waybill.c.k).where(~delivered).correlate(shipments).exists()
    return (
        select(shipments.kind)
        .where(
            shipments.token_id == order_token,
            shipments.checkout_form_id == order_form,
            shipments.kind == "shipments",
            shipments.shipped_at <= cutoff,
            undelivered,
        )
        .exists()
    )


async def driver_connection(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one (same transaction), for the functions above."""
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver
