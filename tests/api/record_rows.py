"""Order records stored with the worker's own statement (`db.queries.order_records.store_records`), for
the API to read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from core.order_records import OrderRecordMessage, RecordKind
from db.engine import asyncpg_dsn
from db.queries.order_records import store_records

NOW = datetime.now(UTC)
# Key order, spacing and an escaped U+0000 (which jsonb refuses) as Allegro might send them: given back
# as they are.
INVOICES = (
    '{"invoices":[{"id":"9b0f","invoiceNumber":"FV 1/2026 \\u0000","createdAt":"2026-03-01T10:00:00.000Z",'
    '"file":null}],"hasExternalInvoices":false,"links":[]}'
)


def shipments_text(*waybills: str, days_ago: float) -> str:
    created = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = [
        {"waybill": w, "carrierId": "DPD", "lineItems": [], "createdAt": created, "id": w} for w in waybills
    ]
    return orjson.dumps({"shipments": items}).decode()


def tracking_text(waybill: str, *codes: str) -> str:
    at = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    statuses = [{"occurredAt": at, "code": code, "description": None} for code in codes]
    return orjson.dumps(
        {"waybill": waybill, "trackingDetails": {"statuses": statuses, "createdAt": at, "updatedAt": at}}
    ).decode()


async def store(
    database_url: str,
    token_id: uuid.UUID,
    user_id: str,
    form_id: str,
    records: list[tuple[RecordKind, str, str]],
) -> None:
    messages = [
        OrderRecordMessage.of(
            token_id=token_id,
            user_id=user_id,
            seller_id="s",
            checkout_form_id=form_id,
            kind=kind,
            record_key=key,
            document=document,
            fetched_at=NOW - timedelta(minutes=len(records) - i),
            source="journal",
            sync_run_id=None,
        )
        for i, (kind, key, document) in enumerate(records)
    ]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            await store_records(conn, messages)
    finally:
        await conn.close()


async def store_fuzz_records(database_url: str, token_id: uuid.UUID, user_id: str, form_id: str) -> None:
    """One record of each kind for an order (the OpenAPI run's answers then carry them)."""
    await store(
        database_url,
        token_id,
        user_id,
        form_id,
        [
            ("shipments", "", shipments_text("0001U", days_ago=3)),
            ("invoices", "", INVOICES),
            ("tracking", "DPD:0001U", tracking_text("0001U", "IN_TRANSIT")),
        ],
    )
