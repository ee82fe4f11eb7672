"""Rebuilding `orders` and `order_revisions` from the compacted topics, and checksums to prove it.

Each record's form is restored from its exact text (`core.contract.split_document`), with the same
derived columns the sink writes (`core.documents`): a replay into emptied tables gives back every column
the worker wrote (the surrogate `id` aside), which `token_checksum` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

import asyncpg
from sqlalchemy import Table, TextClause, text
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.contract import OrderChange, RevisionRecord
from core.documents import content_hash, jsonb_text
from core.order_fields import KEY, NAMES, OWNER, STORED, VERSION
from db.models import Order, OrderRevision

# The restored row is the message's state, whatever the table held: replay is the source of truth here.
# Every column is the change's member of that name, but these (`captured_at` is both sync times).
_RESTORED_AS = {
    "order_data": "CAST(nullif(coalesce(:jsonb_text, :order_json), '') AS jsonb)",
    "first_seen_at": "coalesce(CAST(:first_seen_at AS timestamptz), :captured_at)",
    "last_synced_at": ":captured_at",
}
RESTORED_COLUMNS = (*KEY, *OWNER, *VERSION, *NAMES, "order_json", "content_hash", "order_data", *STORED)
_RESTORE_ORDER = text(
    f"""
    INSERT INTO orders ({", ".join(RESTORED_COLUMNS)})
    VALUES ({", ".join(_RESTORED_AS.get(name, f":{name}") for name in RESTORED_COLUMNS)})
    ON CONFLICT (token_id, checkout_form_id) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name in RESTORED_COLUMNS if name not in KEY)}
    """  # noqa: S608 - constant column names, values are parameters
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
    INSERT INTO order_revisions (token_id, checkout_form_id, revision, updated_at, order_json, content_hash,
        captured_at, source)
    VALUES (:token_id, :checkout_form_id, :revision, :updated_at, :order_json, :content_hash,
            :captured_at, :source)
    ON CONFLICT (token_id, checkout_form_id, revision, content_hash) DO NOTHING
    """
)


async def _execute_rows(
    connection: AsyncConnection, statement: TextClause, rows: list[dict[str, Any]]
) -> None:
    """Execute for every row; a row whose text jsonb refuses altogether is written without its query
    copy, as the worker wrote it (`processors.handler`)."""
    try:
        async with connection.begin_nested():
            await connection.execute(statement, rows)
    except DBAPIError as exc:
        if not _is_data_error(exc):
            raise
        for row in rows:
            try:
                async with connection.begin_nested():
                    await connection.execute(statement, row)
            except DBAPIError as again:
                if not _is_data_error(again):
                    raise
                async with connection.begin_nested():
                    await connection.execute(statement, {**row, "jsonb_text": ""})


def _is_data_error(exc: DBAPIError) -> bool:
    # SQLAlchemy's asyncpg adapter reports some data errors (numeric overflow) as its generic Error; the
    # driver's exception underneath tells.
    return isinstance(exc, DataError) or isinstance(
        exc.orig.__cause__ if exc.orig else None, asyncpg.DataError
    )


def _document_columns(order_json: str) -> dict[str, Any]:
    return {
        "order_json": order_json,
        "content_hash": content_hash(order_json),
        "jsonb_text": jsonb_text(order_json),
    }


async def restore_orders(connection: AsyncConnection, changes: Sequence[tuple[OrderChange, str]]) -> int:
    """Upsert the latest state of each order from (change, exact form text); returns the rows written."""
    latest: dict[tuple[UUID, str], tuple[OrderChange, str]] = {}
    for change, order_json in changes:
        latest[(change.token_id, change.checkout_form_id)] = (change, order_json)
    if not latest:
        return 0
    rows: list[dict[str, Any]] = [
        {
            **change.model_dump(exclude={"order", "schema_version", "change"}),
            **_document_columns(order_json),
        }
        for change, order_json in latest.values()
    ]
    await _execute_rows(connection, _RESTORE_ORDER, rows)
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


async def restore_revisions(
    connection: AsyncConnection, records: Sequence[tuple[RevisionRecord, str]]
) -> int:
    """Insert revisions that are missing, from (record, exact form text); returns how many were offered."""
    if not records:
        return 0
    rows = [
        {**record.model_dump(exclude={"order", "schema_version"}), **_document_columns(order_json)}
        for record, order_json in records
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


def _content_columns(table: Table) -> str:
    # Every column but the surrogate id, which a rebuild renumbers; jsonb and arrays by their text form.
    return ", ".join(column.name for column in table.columns if column.name != "id")


async def token_checksum(connection: AsyncConnection, token_id: UUID) -> str:
    """md5 over every column (the surrogate `id` aside) of a token's `orders` and `order_revisions` rows,
    comparable before and after a rebuild: `orders=<md5>/<rows> order_revisions=<md5>/<rows>`."""
    parts = []
    for model, order in (
        (Order, "checkout_form_id"),
        (OrderRevision, "checkout_form_id, revision, content_hash, captured_at"),
    ):
        table = cast(Table, model.__table__)
        columns = _content_columns(table)
        result = await connection.execute(
            text(
                f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')), count(*)"  # noqa: S608
                f" FROM (SELECT {columns} FROM {table.name} WHERE token_id = :t) AS t"
            ),
            {"t": token_id},
        )
        digest, rows = result.one()
        parts.append(f"{table.name}={digest}/{rows}")
    return " ".join(parts)


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
