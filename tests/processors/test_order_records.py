"""The order-records handler against real PostgreSQL: every distinct content kept once, the newest fetch
current, whatever the order or repetition of the messages; invalid messages dead-lettered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from core.order_records import OrderRecordMessage, RecordKind
from processors.records import handle_record_batch
from tests.processors.conftest import RecordingPublisher
from tests.processors.factory import raw

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
FORM = "29738e61-7f6a-11e8-ac45-09db60ede9d6"


def message(
    token_id: uuid.UUID, kind: RecordKind, document: str, minutes: int, key: str = ""
) -> OrderRecordMessage:
    return OrderRecordMessage.of(
        token_id=token_id,
        user_id="user-1",
        seller_id="seller-1",
        checkout_form_id=FORM,
        kind=kind,
        record_key=key,
        document=document,
        fetched_at=AT + timedelta(minutes=minutes),
        source="journal",
        sync_run_id=None,
    )


def shipments(*waybills: str) -> str:
    items = [
        {
            "waybill": w,
            "carrierId": "DPD",
            "lineItems": [],
            "createdAt": f"2026-03-0{i + 1}T10:00:00Z",
            "id": w,
        }
        for i, w in enumerate(waybills)
    ]
    return orjson.dumps({"shipments": items}).decode()


def tracking(*codes: str) -> str:
    statuses = [
        {"occurredAt": f"2026-03-0{i + 2}T08:00:00.000Z", "code": code, "description": None}
        for i, code in enumerate(codes)
    ]
    details = {
        "statuses": statuses,
        "createdAt": "2026-03-02T08:00:00.000Z",
        "updatedAt": "2026-03-05T08:00:00.000Z",
    }
    return orjson.dumps({"waybill": "0001U", "trackingDetails": details}).decode()


async def test_versions_and_the_current_record_do_not_depend_on_order_or_repetition(
    pool: asyncpg.Pool, publisher: RecordingPublisher
) -> None:
    one, two = shipments("0001U"), shipments("0001U", "0002U")
    # Back and forth: the content returns to the first one after the second (a parcel removed again).
    history = [message(uuid.uuid4(), "shipments", text, m) for text, m in ((one, 0), (two, 10), (one, 20))]
    checksums = []
    for order in (history, list(reversed(history)), [history[1], history[0], history[2], history[0]]):
        token_id = uuid.uuid4()
        batch = [m.model_copy(update={"token_id": token_id}) for m in order]
        for half in (batch[: len(batch) // 2], batch[len(batch) // 2 :]):
            await handle_record_batch(pool, publisher, raw([m.encode() for m in half]), dlq_topic="dlq")
        checksums.append(await _rows_without_token(pool, token_id))
        row = await pool.fetchrow("SELECT * FROM order_records WHERE token_id = $1", token_id)
        assert row["document"] == one and row["fetched_at"] == AT + timedelta(minutes=20)
        assert row["first_fetched_at"] == AT
        assert row["waybills"] == ["DPD:0001U"] and row["shipped_at"] == datetime(2026, 3, 1, 10, tzinfo=UTC)
        versions = await pool.fetch(
            "SELECT document, first_fetched_at FROM order_record_versions WHERE token_id = $1 ORDER BY 2",
            token_id,
        )
        assert [(v["document"], v["first_fetched_at"]) for v in versions] == [
            (one, AT),
            (two, AT + timedelta(minutes=10)),
        ]
    assert checksums[0] == checksums[1] == checksums[2]
    assert not publisher.sent


async def _rows_without_token(pool: asyncpg.Pool, token_id: uuid.UUID) -> list[list[tuple[object, ...]]]:
    """Every column but the token id of the token's rows in both tables, in key order."""
    tables = []
    for table in ("order_records", "order_record_versions"):
        rows = await pool.fetch(f"SELECT * FROM {table} WHERE token_id = $1", token_id)  # noqa: S608
        tables.append(sorted(tuple(v for k, v in row.items() if k != "token_id") for row in rows))
    return tables


async def test_tracking_records_give_the_delivery_time_and_the_last_code(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    moving = message(token_id, "tracking", tracking("PENDING", "IN_TRANSIT"), 0, key="DPD:0001U")
    done = message(token_id, "tracking", tracking("PENDING", "IN_TRANSIT", "DELIVERED"), 5, key="DPD:0001U")
    await handle_record_batch(pool, publisher, raw([moving.encode()]), dlq_topic="dlq")
    row = await pool.fetchrow(
        "SELECT delivered_at, last_code FROM order_records WHERE token_id = $1", token_id
    )
    assert (row["delivered_at"], row["last_code"]) == (None, "IN_TRANSIT")
    await handle_record_batch(pool, publisher, raw([done.encode()]), dlq_topic="dlq")
    row = await pool.fetchrow(
        "SELECT delivered_at, last_code FROM order_records WHERE token_id = $1", token_id
    )
    assert (row["delivered_at"], row["last_code"]) == (datetime(2026, 3, 4, 8, tzinfo=UTC), "DELIVERED")
    assert (
        await pool.fetchval("SELECT count(*) FROM order_record_versions WHERE token_id = $1", token_id) == 2
    )


async def test_a_record_whose_hash_is_not_its_document_is_dead_lettered_and_the_rest_stored(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    good = message(token_id, "invoices", '{"invoices":[]}', 0)
    forged = orjson.loads(good.encode()) | {"document": '{"invoices":[{"id":"x"}]}'}
    dead = await handle_record_batch(
        pool, publisher, raw([orjson.dumps(forged), b"not json", good.encode()]), dlq_topic="dlq"
    )
    assert dead == 2
    headers = [dict(record.headers) for record in publisher.sent["dlq"]]
    assert all(h["error_class"] == b"ContractError" for h in headers)
    assert b"content_sha256" in headers[0]["error_message"]
    stored = await pool.fetch("SELECT document FROM order_records WHERE token_id = $1", token_id)
    assert [row["document"] for row in stored] == ['{"invoices":[]}']
