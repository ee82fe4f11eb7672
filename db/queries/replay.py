"""Rebuilding `orders` and `order_revisions` from the compacted topics, and checksums to prove it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.contract import OrderChange, RevisionRecord

# The restored row is the message's state, whatever the table held: replay is the source of truth here.
_RESTORE_ORDER = text(
    """
    INSERT INTO orders (
        token_id, user_id, seller_id, checkout_form_id, revision, status, fulfillment_status, buyer_login,
        bought_at, updated_at, total_amount, currency, line_item_ids, order_data, source,
        first_seen_at, last_synced_at, superseded_at, superseded_by, missing_upstream_since
    ) VALUES (
        :token_id, :user_id, :seller_id, :checkout_form_id, :revision, :status, :fulfillment_status,
        :buyer_login, :bought_at, :updated_at, :total_amount, :currency, :line_item_ids,
        CAST(:order_data AS jsonb), :source, coalesce(CAST(:first_seen_at AS timestamptz), :captured_at),
        :captured_at, :superseded_at, :superseded_by, :missing_upstream_since
    )
    ON CONFLICT (token_id, checkout_form_id) DO UPDATE SET
        user_id = EXCLUDED.user_id, revision = EXCLUDED.revision, status = EXCLUDED.status,
        fulfillment_status = EXCLUDED.fulfillment_status, buyer_login = EXCLUDED.buyer_login,
        bought_at = EXCLUDED.bought_at, updated_at = EXCLUDED.updated_at,
        total_amount = EXCLUDED.total_amount, currency = EXCLUDED.currency,
        line_item_ids = EXCLUDED.line_item_ids, order_data = EXCLUDED.order_data,
        source = EXCLUDED.source, first_seen_at = EXCLUDED.first_seen_at,
        last_synced_at = greatest(orders.last_synced_at, EXCLUDED.last_synced_at),
        superseded_at = EXCLUDED.superseded_at, superseded_by = EXCLUDED.superseded_by,
        missing_upstream_since = EXCLUDED.missing_upstream_since, seller_id = EXCLUDED.seller_id
    """
)

_RESTORE_LINE_ITEMS = text(
    """
    INSERT INTO order_line_items (token_id, line_item_id, checkout_form_id)
    SELECT :token_id, unnest(CAST(:line_item_ids AS text[])), :checkout_form_id
    ON CONFLICT DO NOTHING
    """
)

_RESTORE_REVISION = text(
    """
    INSERT INTO order_revisions
        (token_id, checkout_form_id, revision, updated_at, order_data, captured_at, source)
    VALUES (:token_id, :checkout_form_id, :revision, :updated_at, CAST(:order_data AS jsonb),
            :captured_at, :source)
    ON CONFLICT (token_id, checkout_form_id, revision) DO NOTHING
    """
)


async def restore_orders(connection: AsyncConnection, changes: Sequence[OrderChange]) -> int:
    """Upsert the latest state of each order; returns how many rows were written."""
    latest: dict[tuple[UUID, str], OrderChange] = {}
    for change in changes:
        latest[(change.token_id, change.checkout_form_id)] = change
    if not latest:
        return 0
    rows: list[dict[str, Any]] = [
        {
            **change.model_dump(exclude={"order", "schema_version", "change"}),
            "order_data": orjson.dumps(change.order).decode(),
        }
        for change in latest.values()
    ]
    await connection.execute(_RESTORE_ORDER, rows)
    items = [
        {
            "token_id": r["token_id"],
            "line_item_ids": r["line_item_ids"],
            "checkout_form_id": r["checkout_form_id"],
        }
        for r in rows
        if r["line_item_ids"]
    ]
    if items:
        await connection.execute(_RESTORE_LINE_ITEMS, items)
    return len(rows)


async def restore_revisions(connection: AsyncConnection, records: Sequence[RevisionRecord]) -> int:
    """Insert revisions that are missing; returns how many were offered."""
    if not records:
        return 0
    rows = [
        {
            **record.model_dump(exclude={"order", "schema_version"}),
            "order_data": orjson.dumps(record.order).decode(),
        }
        for record in records
    ]
    await connection.execute(_RESTORE_REVISION, rows)
    return len(rows)


async def delete_token_orders(connection: AsyncConnection, token_id: UUID) -> tuple[int, int]:
    """Delete a token's orders and revisions (before a replay test or a forced rebuild)."""
    await connection.execute(text("DELETE FROM order_line_items WHERE token_id = :t"), {"t": token_id})
    orders = await connection.execute(text("DELETE FROM orders WHERE token_id = :t"), {"t": token_id})
    revisions = await connection.execute(
        text("DELETE FROM order_revisions WHERE token_id = :t"), {"t": token_id}
    )
    return orders.rowcount, revisions.rowcount


async def token_checksum(connection: AsyncConnection, token_id: UUID) -> str:
    """An md5 over the content of a token's orders and revisions, comparable before and after a rebuild."""
    result = await connection.execute(
        text(
            """
            SELECT md5(coalesce((
                SELECT string_agg(
                    concat_ws('|', checkout_form_id, revision, seller_id, status, fulfillment_status,
                              buyer_login, bought_at, updated_at, total_amount, currency, line_item_ids::text,
                              order_data::text, first_seen_at, superseded_at, superseded_by,
                              missing_upstream_since),
                    E'\\n' ORDER BY checkout_form_id)
                FROM orders WHERE token_id = :t), '')
            || '#' || coalesce((
                SELECT string_agg(
                    concat_ws('|', checkout_form_id, revision, updated_at, order_data::text,
                              captured_at, source),
                    E'\\n' ORDER BY checkout_form_id, revision)
                FROM order_revisions WHERE token_id = :t), ''))
            """
        ),
        {"t": token_id},
    )
    return str(result.scalar_one())


async def pending_kafka_resyncs(connection: AsyncConnection) -> list[UUID]:
    """Tokens whose owner asked (through the API) for a resync from Kafka, oldest request first."""
    result = await connection.execute(
        text(
            "SELECT id FROM user_tokens WHERE resync_source = 'kafka' AND resync_requested_at IS NOT NULL"
            " ORDER BY resync_requested_at"
        )
    )
    return [row[0] for row in result]


async def clear_kafka_resync(connection: AsyncConnection, token_id: UUID) -> None:
    """Mark a token's resync-from-Kafka request as done."""
    await connection.execute(
        text(
            "UPDATE user_tokens SET resync_requested_at = NULL, resync_since = NULL, resync_source = NULL"
            " WHERE id = :t AND resync_source = 'kafka'"
        ),
        {"t": token_id},
    )
