"""Linking in the background, then backfill and journal into the snapshots topic."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from core.crypto import KeyRing
from core.settings import KafkaSettings
from tests.producers.conftest import (
    KEYS,
    Sim,
    SnapshotReader,
    make_settings,
    running_poller,
    start_link,
    store_orders,
    token_row,
    wait_for,
)


async def test_linked_account_is_backfilled_then_followed_through_the_journal(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    seller = await sim.seller()
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 120, "days_back": 300})
    token_id = await start_link(sim, db, user_id="user-a", seller_id=seller)
    settings = make_settings(sim, kafka_settings, poller_database_url)

    async with running_poller(settings):
        await wait_for(lambda: _status(db, token_id, "active"), within=20, what="activation")
        row = await token_row(db, token_id)
        assert row["seller_id"] == seller
        assert row["device_code"] is None
        assert row["access_token"].startswith("k1:") and KeyRing.parse(KEYS).open(row["access_token"])
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=40)
        await wait_for(lambda: _backfilled(db, token_id), within=20, what="backfill completion")
        await store_orders(db, snapshots, token_id)

        created = await sim.control("POST", f"/sellers/{seller}/orders", {"count": 30, "days_back": 0.001})
        first = created["ids"][0]
        await sim.control("POST", f"/sellers/{seller}/orders/{first}/mutate", {"fulfillment_status": "SENT"})
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=30)
        # The cursor moves only after the page's snapshots were acknowledged, so it follows shortly.
        await wait_for(lambda: _cursor_moved(db, token_id), within=10, what="the cursor to advance")

    sources = {e.source for e in snapshots.all if e.checkout_form_id in created["ids"]}
    assert sources == {"journal"}
    row = await token_row(db, token_id)
    assert row["event_cursor"] is not None and row["last_event_at"] is not None


async def test_denied_link_ends_as_link_denied_and_slow_down_is_honoured(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    seller = await sim.seller()
    denied = await start_link(sim, db, user_id="user-b", seller_id=seller, approve=False)
    row = await token_row(db, denied)
    await sim.control("POST", "/device/deny", {"user_code": row["user_code"]})
    settings = make_settings(sim, kafka_settings, poller_database_url)
    async with running_poller(settings):
        await wait_for(lambda: _status(db, denied, "link_denied"), within=20, what="link_denied")
    row = await token_row(db, denied)
    assert row["device_code"] is None


async def test_relinking_the_same_seller_replaces_the_active_link(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    seller = await sim.seller()
    settings = make_settings(sim, kafka_settings, poller_database_url)
    async with running_poller(settings):
        first = await start_link(sim, db, user_id="user-c", seller_id=seller)
        await wait_for(lambda: _status(db, first, "active"), within=20, what="first link")
        second = await start_link(sim, db, user_id="user-c", seller_id=seller)
        await wait_for(lambda: _status(db, second, "active"), within=20, what="second link")
    assert (await token_row(db, first))["status"] == "unlinked"


async def _status(db: AsyncEngine, token_id: object, status: str) -> bool:
    return bool((await token_row(db, token_id))["status"] == status)  # type: ignore[arg-type]


async def _backfilled(db: AsyncEngine, token_id: object) -> bool:
    return (await token_row(db, token_id))["backfill_completed_at"] is not None  # type: ignore[arg-type]


async def _cursor_moved(db: AsyncEngine, token_id: object) -> bool:
    return (await token_row(db, token_id))["last_event_at"] is not None  # type: ignore[arg-type]
