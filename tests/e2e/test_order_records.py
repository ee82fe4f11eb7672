"""End to end for order records: simulator → poller → Kafka → processor → PostgreSQL → API, each a separate
OS process, on real Kafka and PostgreSQL.

An order with two parcels (the one the simulated seller ships and one added by a control call), tracking
histories ending DELIVERED and an invoice: after the simulator purged the order, the API still serves all
of it, equal to what the simulator served before the purge, and a replay from Kafka rebuilds the records'
rows exactly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from core.settings import KafkaSettings
from db.engine import asyncpg_dsn
from db.queries.order_records import records_checksum
from tests.e2e.pipeline import Pipeline, eventually, start_pipeline, token_checksum

pytestmark = pytest.mark.slow

USER = "e2e-records-user"
VENDOR = "application/vnd.allegro.public.v1+json"
BASIC = ("demo-client", "demo-secret")
KINDS = "shipments,tracking,invoices"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def pipeline(kafka_settings: KafkaSettings, database_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = start_pipeline(kafka_settings, database_url, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _link(pipeline: Pipeline, seller_id: str) -> str:
    started = pipeline.api.post(f"/v1/users/{USER}/tokens")
    assert started.status_code == 201, started.text
    body = started.json()
    approved = pipeline.simulator.post(
        "/_sim/device/approve", json={"user_code": body["user_code"], "seller_id": seller_id}
    )
    approved.raise_for_status()
    token_id = str(body["token_id"])

    def active() -> bool:
        return bool(pipeline.api.get(f"/v1/users/{USER}/tokens/{token_id}").json()["status"] == "active")

    eventually(active, 60, "the link to become active", pipeline)
    return token_id


def _seller_access_token(sim: httpx.Client, seller_id: str) -> str:
    """An access token of our own for the seller, to read what the simulator serves (device flow)."""
    device = sim.post("/auth/oauth/device", data={"client_id": BASIC[0]}, auth=BASIC).json()
    sim.post(
        "/_sim/device/approve", json={"user_code": device["user_code"], "seller_id": seller_id}
    ).raise_for_status()
    granted = sim.post(
        "/auth/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device["device_code"],
        },
        auth=BASIC,
    )
    granted.raise_for_status()
    return str(granted.json()["access_token"])


def _served(sim: httpx.Client, token: str, path: str, params: Any = None) -> httpx.Response:
    return sim.get(path, params=params, headers={"Accept": VENDOR, "Authorization": f"Bearer {token}"})


def _simulator_records(sim: httpx.Client, token: str, form_id: str) -> dict[str, Any]:
    """The shipments and invoices answers and each waybill's tracking item, as the simulator serves them
    (bytes)."""
    shipments = _served(sim, token, f"/order/checkout-forms/{form_id}/shipments")
    invoices = _served(sim, token, f"/order/checkout-forms/{form_id}/invoices")
    assert shipments.status_code == invoices.status_code == 200, (shipments.text, invoices.text)
    tracking: dict[str, bytes] = {}
    for shipment in shipments.json()["shipments"]:
        answer = _served(
            sim, token, f"/order/carriers/{shipment['carrierId']}/tracking", {"waybill": shipment["waybill"]}
        )
        assert answer.status_code == 200, answer.text
        [item] = answer.json()["waybills"]
        # The item's own bytes: the simulator encodes compactly, as the client keeps it.
        tracking[f"{shipment['carrierId']}:{shipment['waybill']}"] = _item_bytes(answer.content, item)
    return {"shipments": shipments.content, "invoices": invoices.content, "tracking": tracking}


def _item_bytes(content: bytes, item: dict[str, Any]) -> bytes:
    text = orjson.dumps(item)
    assert text in content
    return text


async def _stored_documents(database_url: str, token_id: str, form_id: str) -> dict[tuple[str, str], str]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT kind, record_key, document FROM order_records"
            " WHERE token_id = $1 AND checkout_form_id = $2",
            uuid.UUID(token_id),
            form_id,
        )
    finally:
        await conn.close()
    return {(row["kind"], row["record_key"]): row["document"] for row in rows}


async def _records_state(database_url: str, token_id: str) -> tuple[str, int]:
    """The records checksum and how many reads are still waiting (due checks and followed waybills)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        checksum = await records_checksum(conn, uuid.UUID(token_id))
        waiting = await conn.fetchval(
            "SELECT (SELECT count(*) FROM order_record_checks WHERE token_id = $1 AND due_at <= now())"
            " + (SELECT count(*) FROM pending_waybills WHERE token_id = $1)",
            uuid.UUID(token_id),
        )
    finally:
        await conn.close()
    return checksum, int(waiting)


async def _delete_rows(database_url: str, token_id: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("DELETE FROM order_records WHERE token_id = $1", uuid.UUID(token_id))
        await conn.execute("DELETE FROM order_record_versions WHERE token_id = $1", uuid.UUID(token_id))
    finally:
        await conn.close()


def test_an_order_with_two_parcels_tracking_and_an_invoice_outlives_its_purge_and_replays_exactly(
    pipeline: Pipeline, database_url: str
) -> None:
    sim, api = pipeline.simulator, pipeline.api
    seller_id = sim.post("/_sim/sellers", json={"login": "e2e-records-seller"}).json()["seller_id"]
    sim.post(f"/_sim/sellers/{seller_id}/orders", json={"count": 12, "days_back": 300}).raise_for_status()
    truth = sim.get(f"/_sim/sellers/{seller_id}/truth").json()["orders"]
    target = min(truth, key=lambda o: o["form"]["lineItems"][0]["boughtAt"])
    form_id = target["id"]
    # A months-old order was shipped long ago: the simulated seller's parcel is there, delivered. A second
    # parcel, its carrier's statuses (the last DELIVERED) and an invoice come through control calls.
    assert target["form"]["fulfillment"]["status"] in ("SENT", "PICKED_UP", "RETURNED")
    parcel = sim.post(
        f"/_sim/sellers/{seller_id}/orders/{form_id}/parcels",
        json={"carrier_id": "DHL", "waybill": "E2E0000000001PL"},
    )
    parcel.raise_for_status()
    now = datetime.now(UTC)
    for code, days_ago in (
        ("PENDING", 3),
        ("IN_TRANSIT", 2),
        ("RELEASED_FOR_DELIVERY", 1.2),
        ("DELIVERED", 1),
    ):
        sim.post(
            "/_sim/tracking",
            json={
                "carrier_id": "DHL",
                "waybill": "E2E0000000001PL",
                "code": code,
                "occurred_at": (now - timedelta(days=days_ago)).isoformat(),
            },
        ).raise_for_status()
    sim.post(
        f"/_sim/sellers/{seller_id}/orders/{form_id}/invoices", json={"invoice_number": "FV 7/2026"}
    ).raise_for_status()

    own_token = _seller_access_token(sim, seller_id)
    served = _simulator_records(sim, own_token, form_id)
    assert len(served["tracking"]) == 2, served
    invoices = orjson.loads(served["invoices"])["invoices"]
    assert any(invoice["invoiceNumber"] == "FV 7/2026" for invoice in invoices)
    for item in served["tracking"].values():
        statuses = orjson.loads(item)["trackingDetails"]["statuses"]
        assert statuses[-1]["code"] == "DELIVERED"

    token_id = _link(pipeline, seller_id)

    def backed_up() -> dict[str, Any] | None:
        answer = api.get(f"/v1/users/{USER}/orders/{form_id}", params={"include": KINDS})
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        complete = body["shipments"] and body["invoices"] and len(body["tracking"]) == 2
        return body if complete else None

    eventually(backed_up, 120, "the order's records in the API", pipeline)

    # Exactly what the simulator served, character for character.
    stored = asyncio.run(_stored_documents(database_url, token_id, form_id))
    assert stored[("shipments", "")].encode() == served["shipments"]
    assert stored[("invoices", "")].encode() == served["invoices"]
    for key, item in served["tracking"].items():
        assert stored[("tracking", key)].encode() == item

    # Allegro purges the order; its records answer 404 from then on. The backup keeps them.
    bought = datetime.fromisoformat(target["form"]["lineItems"][0]["boughtAt"])
    purged = sim.post("/_sim/purge", json={"before": (bought + timedelta(seconds=1)).isoformat()}).json()
    assert purged["orders"] >= 1
    assert _served(sim, own_token, f"/order/checkout-forms/{form_id}/shipments").status_code == 404

    body = api.get(f"/v1/users/{USER}/orders/{form_id}", params={"include": KINDS}).json()
    assert body["shipments"]["document"] == orjson.loads(served["shipments"])
    assert body["invoices"]["document"] == orjson.loads(served["invoices"])
    tracking = {entry["record_key"]: entry["document"] for entry in body["tracking"]}
    assert tracking == {key: orjson.loads(item) for key, item in served["tracking"].items()}
    # Each kind on its own endpoint, with its history.
    for kind, count in (("shipments", 1), ("invoices", 1), ("tracking", 2)):
        listed = api.get(f"/v1/users/{USER}/orders/{form_id}/{kind}").json()
        assert len(listed["items"]) == count, listed
        assert len(listed["versions"]) >= count
    # Delivered parcels: not in "shipped but not delivered after 0 days".
    undelivered = api.get(f"/v1/users/{USER}/orders", params={"undelivered_after_days": 0, "limit": 500})
    assert undelivered.status_code == 200, undelivered.text
    assert form_id not in {order["checkout_form_id"] for order in undelivered.json()["items"]}
    # The export carries them.
    export = api.get(f"/v1/users/{USER}/orders/export", params={"include": KINDS})
    assert export.status_code == 200, export.text
    lines = [line for line in export.text.splitlines() if f'"checkout_form_id":"{form_id}"' in line]
    assert len(lines) == 1 and '"E2E0000000001PL"' in lines[0] and "FV 7/2026" in lines[0]

    # Replay: once nothing is waiting, drop the token's rows and rebuild them from Kafka.
    def settled() -> str | None:
        first, waiting = asyncio.run(_records_state(database_url, token_id))
        if waiting:
            return None
        again, _ = asyncio.run(_records_state(database_url, token_id))
        return first if first == again else None

    records_before = eventually(settled, 120, "the records to settle", pipeline)
    orders_before = token_checksum(database_url, token_id)
    asyncio.run(_delete_rows(database_url, token_id))
    assert asyncio.run(_records_state(database_url, token_id))[0] != records_before
    result = subprocess.run(
        [sys.executable, "-m", "cli", "replay", "--token", token_id, "--drop-first"],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert asyncio.run(_records_state(database_url, token_id))[0] == records_before
    assert token_checksum(database_url, token_id) == orders_before
    rebuilt = asyncio.run(_stored_documents(database_url, token_id, form_id))
    assert rebuilt == stored
