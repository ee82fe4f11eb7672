"""Linking in the background, then backfill and journal into the snapshots topic."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.crypto import KeyRing
from core.settings import KafkaSettings
from db.models import Order
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


async def test_relinking_twice_in_a_row_continues_the_first_token_and_fills_the_login(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    seller = await sim.seller()
    login = (await sim.control("GET", f"/sellers/{seller}"))["login"]
    settings = make_settings(sim, kafka_settings, poller_database_url)
    async with running_poller(settings):
        first = await start_link(sim, db, user_id="user-c", seller_id=seller)
        await wait_for(lambda: _status(db, first, "active"), within=20, what="first link")
        second = await start_link(sim, db, user_id="user-c", seller_id=seller)
        await wait_for(lambda: _status(db, second, "relinked"), within=20, what="second link")
        third = await start_link(sim, db, user_id="user-c", seller_id=seller)
        await wait_for(lambda: _status(db, third, "relinked"), within=20, what="third link")
    held = await token_row(db, first)
    assert held["status"] == "active"
    assert held["login"] == login
    for request in (second, third):
        row = await token_row(db, request)
        assert row["relinked_to"] == first
        assert row["access_token"] is None and row["refresh_token"] is None and row["device_code"] is None
    # the first token holds the newest pair: the third approval's
    assert KeyRing.parse(KEYS).open(held["access_token"]) != ""


async def test_relinking_after_needs_reauth_keeps_one_copy_of_the_orders(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    seller = await sim.seller()
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 30, "days_back": 40})
    settings = make_settings(sim, kafka_settings, poller_database_url)
    async with running_poller(settings):
        first = await start_link(sim, db, user_id="user-d", seller_id=seller)
        await snapshots.wait_matches(first, await sim.truth(seller), within=40)
        await wait_for(lambda: _backfilled(db, first), within=20, what="backfill completion")
        await store_orders(db, snapshots, first)
        await sim.control("POST", "/tokens/revoke", {"seller_id": seller})
        await sim.control("POST", f"/sellers/{seller}/orders", {"count": 3, "days_back": 0.0005})
        await wait_for(lambda: _status(db, first, "needs_reauth"), within=20, what="needs_reauth")

        again = await start_link(sim, db, user_id="user-d", seller_id=seller)
        await wait_for(lambda: _status(db, again, "relinked"), within=20, what="the relink")
        await wait_for(lambda: _status(db, first, "active"), within=5, what="the first token active")
        # the orders made while the account needed relinking reach the backup under the first token
        await snapshots.wait_matches(first, await sim.truth(seller), within=40)
        await store_orders(db, snapshots, first)

    assert not [e for e in snapshots.all if e.token_id == again]
    async with db.connect() as conn:
        rows = await conn.execute(
            select(Order.token_id, func.count()).where(Order.user_id == "user-d").group_by(Order.token_id)
        )
        by_token = dict(rows.all())
    assert by_token == {first: 33}


async def _status(db: AsyncEngine, token_id: object, status: str) -> bool:
    return bool((await token_row(db, token_id))["status"] == status)  # type: ignore[arg-type]


async def _backfilled(db: AsyncEngine, token_id: object) -> bool:
    return (await token_row(db, token_id))["backfill_completed_at"] is not None  # type: ignore[arg-type]


async def _cursor_moved(db: AsyncEngine, token_id: object) -> bool:
    return (await token_row(db, token_id))["last_event_at"] is not None  # type: ignore[arg-type]
