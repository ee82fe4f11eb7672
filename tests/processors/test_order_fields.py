"""Every declared order field (`core.order_fields`) goes all the way: read off a real form by the poller,
carried in the envelope, stored in its column, published in the change, shown and filtered by the API,
restored by a replay (real PostgreSQL; a recording publisher stands in for Kafka)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from allegro_api import FormSnapshot
from api.rendering import json_bytes, order_document
from core.contract import decode_order_change, decode_revision_record, split_document
from core.order_fields import FILTERS, ORDER_FIELDS, SHOWN, OrderField
from db.queries.orders import OrderFilters, get_order, list_orders_page
from db.queries.replay import delete_token_orders, restore_orders, restore_revisions, token_checksum
from processors.handler import Topics, handle_snapshot_batch
from processors.messages import RawMessage
from producers.snapshots import TokenIdentity, form_envelope
from tests.processors.conftest import RecordingPublisher

# A form that gives every declared field a value (a field case of reference/field-cases/README.md).
F03B = (Path(__file__).resolve().parents[2] / "reference" / "field-cases" / "F03b.json").read_bytes().strip()
TOPICS = Topics(orders="orders", revisions="revisions", dlq="dlq")
AT = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def ids(order_field: OrderField) -> str:
    return order_field.name


@pytest.fixture
async def stored_order(
    pool: asyncpg.Pool, token_id: uuid.UUID
) -> tuple[dict[str, Any], asyncpg.Record, RecordingPublisher]:
    """The F03b form taken through the poller's envelope and the processor's batch handler."""
    identity = TokenIdentity(token_id=token_id, user_id=f"user-{token_id}", seller_id="90011223")
    snapshot = FormSnapshot.from_json(F03B)
    envelope = form_envelope(identity, snapshot, source="journal", sync_run_id=uuid.uuid4(), fetched_at=AT)
    publisher = RecordingPublisher()
    message = RawMessage("snapshots", 0, 0, envelope.key.encode(), envelope.encode())
    await handle_snapshot_batch(pool, publisher, [message], topics=TOPICS, max_message_bytes=1 << 20)
    row = await pool.fetchrow("SELECT * FROM orders WHERE token_id = $1", token_id)
    assert row is not None
    return {f.name: getattr(envelope, f.name) for f in ORDER_FIELDS}, row, publisher


@pytest.mark.parametrize("order_field", ORDER_FIELDS, ids=ids)
async def test_a_field_is_extracted_stored_and_published(
    order_field: OrderField, stored_order: tuple[dict[str, Any], asyncpg.Record, RecordingPublisher]
) -> None:
    values, row, publisher = stored_order
    value = values[order_field.name]
    assert value not in (None, []), f"the poller read no {order_field.name} off F03b"
    assert row[order_field.name] == value
    (change,) = [decode_order_change(record.value) for record in publisher.sent["orders"]]
    assert getattr(change, order_field.name) == value


@pytest.mark.parametrize("order_field", SHOWN, ids=ids)
async def test_a_shown_field_is_in_the_api_order_document(
    order_field: OrderField,
    pool: asyncpg.Pool,
    token_id: uuid.UUID,
    stored_order: tuple[dict[str, Any], asyncpg.Record, RecordingPublisher],
) -> None:
    values, row, _ = stored_order
    found = await get_order(pool, user_id=row["user_id"], checkout_form_id=row["checkout_form_id"])
    assert found is not None
    document = orjson.loads(json_bytes(order_document(found)))
    assert order_field.adapter.validate_python(document[order_field.name]) == values[order_field.name]


@pytest.mark.parametrize("order_field", FILTERS, ids=ids)
async def test_a_filter_finds_the_order_by_its_field(
    order_field: OrderField,
    session: AsyncSession,
    token_id: uuid.UUID,
    stored_order: tuple[dict[str, Any], asyncpg.Record, RecordingPublisher],
) -> None:
    values, row, _ = stored_order

    async def found(value: str) -> list[str]:
        filters = OrderFilters(token_id=token_id, equal=((order_field.name, value),))
        page = await list_orders_page(
            session, user_id=row["user_id"], filters=filters, sort="updated_at", after=None, limit=10
        )
        return [order.checkout_form_id for order in page]

    assert await found(values[order_field.name]) == [row["checkout_form_id"]]
    assert await found(f"not {values[order_field.name]}") == []


async def test_a_replay_restores_every_field(
    engine: AsyncEngine,
    token_id: uuid.UUID,
    stored_order: tuple[dict[str, Any], asyncpg.Record, RecordingPublisher],
) -> None:
    _, _, publisher = stored_order
    changes = []
    for record in publisher.sent["orders"]:
        _, order_json = split_document(record.value)
        changes.append((decode_order_change(record.value), order_json))
    revisions = []
    for record in publisher.sent["revisions"]:
        _, order_json = split_document(record.value)
        revisions.append((decode_revision_record(record.value), order_json))
    async with engine.begin() as connection:
        before = await token_checksum(connection, token_id)
        await delete_token_orders(connection, token_id)
        await restore_orders(connection, changes)
        await restore_revisions(connection, revisions)
        assert await token_checksum(connection, token_id) == before
