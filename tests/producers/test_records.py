"""The poller's order records (producers.records) against the simulator, on real Kafka and PostgreSQL:
what moves an order onto the check list, what its read publishes, and waybills followed until a final
tracking status across a restart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.ext.asyncio import AsyncEngine

from core.order_records import OrderRecordMessage, decode_order_record
from core.settings import KafkaSettings
from db.engine import asyncpg_dsn
from db.queries.tokens import record_reconcile_request
from producers.metrics import PollerMetrics
from tests.processors.worker import consume_all
from tests.producers.conftest import (
    Sim,
    make_settings,
    running_poller,
    sessions_for,
    start_link,
    token_row,
    wait_for,
)

QUICK = {"tracking_interval_seconds": 0.5}


async def _records(kafka: KafkaSettings, token_id: uuid.UUID) -> list[OrderRecordMessage]:
    found = [
        decode_order_record(m.value)
        for m in await consume_all(kafka.bootstrap_servers, kafka.records_topic, 2)
    ]
    return [m for m in found if m.token_id == token_id]


def _latest(messages: list[OrderRecordMessage], form_id: str, kind: str, key: str = "") -> Any:
    matching = [m for m in messages if (m.checkout_form_id, m.kind, m.record_key) == (form_id, kind, key)]
    return matching[-1] if matching else None


async def _pending(database_url: str, token_id: uuid.UUID) -> set[tuple[str, str, str]]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT checkout_form_id, carrier_id, waybill FROM pending_waybills WHERE token_id = $1", token_id
        )
    finally:
        await conn.close()
    return {(r["checkout_form_id"], r["carrier_id"], r["waybill"]) for r in rows}


async def test_a_shipped_order_gets_its_records_read_and_a_waybill_is_tracked_to_delivered_across_a_restart(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url, poller=QUICK)
    seller = await sim.seller()
    ids = (await sim.control("POST", f"/sellers/{seller}/orders", {"count": 6, "days_back": 0}))["ids"]
    truth = (await sim.control("GET", f"/sellers/{seller}/truth"))["orders"]
    # An order no buyer asked an invoice for and nobody shipped has no records to read.
    quiet = [o["id"] for o in truth if not (o["form"].get("invoice") or {}).get("required")]
    order = ids[0]
    untouched = next((i for i in quiet if i != order), None)
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    metrics = PollerMetrics.create()
    async with running_poller(settings, metrics=metrics):
        await wait_for(
            lambda: _active_and_backfilled(db, token_id), within=60, what="the backfill", every=0.3
        )
        # A parcel, its first status and an invoice appear; Allegro sends no event for them.
        await sim.control(
            "POST", f"/sellers/{seller}/orders/{order}/parcels", {"carrier_id": "DHL", "waybill": "W-REC-1"}
        )
        await sim.control("POST", "/tracking", {"carrier_id": "DHL", "waybill": "W-REC-1", "code": "PENDING"})
        await sim.control(
            "POST", f"/sellers/{seller}/orders/{order}/invoices", {"invoice_number": "FV 9/2026"}
        )
        # The seller sends it: the journal sees the fulfilment move and the records are read.
        await sim.control("POST", f"/sellers/{seller}/orders/{order}/mutate", {"fulfillment_status": "SENT"})

        async def read() -> list[OrderRecordMessage] | None:
            messages = await _records(kafka_settings, token_id)
            tracking = _latest(messages, order, "tracking", "DHL:W-REC-1")
            return messages if tracking and _latest(messages, order, "invoices") else None

        messages = await wait_for(read, within=60, what="the order's records on the topic")
        shipments = _latest(messages, order, "shipments").document
        assert '"waybill":"W-REC-1"' in shipments and '"carrierId":"DHL"' in shipments
        assert "FV 9/2026" in _latest(messages, order, "invoices").document
        assert '"code":"PENDING"' in _latest(messages, order, "tracking", "DHL:W-REC-1").document
        if untouched is not None:
            assert not [m for m in messages if m.checkout_form_id == untouched]
        assert (order, "DHL", "W-REC-1") in await _pending(poller_database_url, token_id)
        published = {
            kind: metrics.registry.get_sample_value("poller_order_records_published_total", {"kind": kind})
            for kind in ("shipments", "invoices", "tracking")
        }
        assert all(count and count >= 1 for count in published.values()), published

    # Stopped: the carrier delivers meanwhile. A new poller finds the waybill on the persisted list.
    await sim.control(
        "POST",
        "/tracking",
        {
            "carrier_id": "DHL",
            "waybill": "W-REC-1",
            "code": "DELIVERED",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    async with running_poller(settings):

        async def delivered() -> bool:
            messages = await _records(kafka_settings, token_id)
            latest = _latest(messages, order, "tracking", "DHL:W-REC-1")
            pending = await _pending(poller_database_url, token_id)
            return '"code":"DELIVERED"' in latest.document and (order, "DHL", "W-REC-1") not in pending

        await wait_for(delivered, within=60, what="DELIVERED published and the waybill off the list")
    # Every version on the topic is keyed by its content, routed by the order.
    for message in await _records(kafka_settings, token_id):
        assert (
            message.key.endswith(message.content_sha256)
            and message.route == f"{token_id}:{message.checkout_form_id}"
        )


async def _active_and_backfilled(db: AsyncEngine, token_id: uuid.UUID) -> bool:
    row = await token_row(db, token_id)
    return bool(row["status"] == "active" and row["backfill_completed_at"] is not None)


async def _check_row(database_url: str, token_id: uuid.UUID, form_id: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT due_at, checked_at FROM order_record_checks"
            " WHERE token_id = $1 AND checkout_form_id = $2",
            token_id,
            form_id,
        )
    finally:
        await conn.close()
    return dict(row) if row is not None else None


async def test_nothing_moves_on_the_lists_until_kafka_acknowledged_the_records(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    # Publishing fails for real: the records topic does not exist yet and the broker does not auto-create.
    missing = kafka_settings.model_copy(update={"records_topic": f"{kafka_settings.records_topic}.later"})
    settings = make_settings(sim, missing, poller_database_url, poller=QUICK)
    seller = await sim.seller()
    [order] = (await sim.control("POST", f"/sellers/{seller}/orders", {"count": 1, "days_back": 0}))["ids"]
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    async with running_poller(settings, kafka_request_timeout_ms=1500):
        await wait_for(
            lambda: _active_and_backfilled(db, token_id), within=60, what="the backfill", every=0.3
        )
        await sim.control(
            "POST", f"/sellers/{seller}/orders/{order}/parcels", {"carrier_id": "DPD", "waybill": "W-ACK-1"}
        )
        await sim.control("POST", f"/sellers/{seller}/orders/{order}/mutate", {"fulfillment_status": "SENT"})

        async def failed_with_the_check_waiting() -> bool:
            row, token = await _check_row(poller_database_url, token_id, order), await token_row(db, token_id)
            return row is not None and token["last_error"] is not None

        await wait_for(failed_with_the_check_waiting, within=60, what="a journal run failing on the records")
        row = await _check_row(poller_database_url, token_id, order)
        assert row is not None and row["due_at"] is not None and row["checked_at"] is None
        assert not await _pending(poller_database_url, token_id)

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(missing.records_topic, 2, 1)])
        finally:
            await admin.close()

        async def checked() -> bool:
            row = await _check_row(poller_database_url, token_id, order)
            return row is not None and row["checked_at"] is not None

        await wait_for(checked, within=60, what="the check done once Kafka takes the records")
        assert (order, "DPD", "W-ACK-1") in await _pending(poller_database_url, token_id)
    published = await _records(missing, token_id)
    assert '"waybill":"W-ACK-1"' in _latest(published, order, "shipments").document


async def test_a_reconcile_reads_the_records_of_the_orders_it_lists_again(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url, poller=QUICK)
    seller = await sim.seller()
    [order] = (await sim.control("POST", f"/sellers/{seller}/orders", {"count": 1, "days_back": 0}))["ids"]
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    async with running_poller(settings):
        await wait_for(
            lambda: _active_and_backfilled(db, token_id), within=60, what="the backfill", every=0.3
        )
        await sim.control("POST", f"/sellers/{seller}/orders/{order}/mutate", {"fulfillment_status": "SENT"})

        async def invoices_read() -> bool:
            return _latest(await _records(kafka_settings, token_id), order, "invoices") is not None

        await wait_for(invoices_read, within=60, what="the first read of the order's records")
        # An invoice arrives without any change to the order: only a reconcile can find it.
        await sim.control(
            "POST", f"/sellers/{seller}/orders/{order}/invoices", {"invoice_number": "FV 3/2026"}
        )
        async with sessions_for(db)() as session, session.begin():
            user_id = (await token_row(db, token_id))["user_id"]
            assert await record_reconcile_request(
                session, user_id=user_id, token_id=token_id, now=datetime.now(UTC)
            )

        async def invoice_found() -> bool:
            latest = _latest(await _records(kafka_settings, token_id), order, "invoices")
            return "FV 3/2026" in latest.document

        await wait_for(invoice_found, within=60, what="the invoice found by the reconcile")
