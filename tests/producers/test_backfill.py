"""A backfill past Allegro's 10,000 offset cap, and the fall-back to a backfill for a stale cursor."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from tests.producers.conftest import (
    Sim,
    SnapshotReader,
    make_settings,
    running_poller,
    start_link,
    store_orders,
    token_row,
    wait_for,
)


@pytest.mark.timeout(600)  # its own waits allow 270 s for the backfill alone
async def test_a_seller_with_25000_orders_is_backfilled_completely(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    seller = await sim.seller()
    await sim.control(
        "POST", f"/sellers/{seller}/orders", {"count": 25_000, "days_back": 330, "with_events": False}
    )
    token_id = await start_link(sim, db, user_id="user-big", seller_id=seller)
    truth = await sim.truth(seller)
    assert len(truth) == 25_000
    started = time.monotonic()
    async with running_poller(make_settings(sim, kafka_settings, poller_database_url)):
        await snapshots.wait_matches(token_id, truth, within=240)
        await wait_for(lambda: _done(db, token_id), within=30, what="backfill completion")
    row = await token_row(db, token_id)
    assert row["backfill_progress"]["walk"]["forms_seen"] >= 25_000
    stats = await sim.stats()
    # Far more than 10,000 forms were listed, and Allegro never had to refuse an offset.
    assert stats.get("GET /order/checkout-forms 422", 0) == 0
    assert stats.get("GET /order/checkout-forms 200", 0) < 25_000 // 100 + 30
    print(f"25k backfill: {time.monotonic() - started:.1f}s")  # noqa: T201


async def _done(db: AsyncEngine, token_id: object) -> bool:
    return (await token_row(db, token_id))["backfill_completed_at"] is not None  # type: ignore[arg-type]


async def test_a_cursor_older_than_the_event_retention_falls_back_to_a_backfill(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    seller = await sim.seller()
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 20, "days_back": 200})
    token_id = await start_link(sim, db, user_id="user-stale", seller_id=seller)
    settings = make_settings(sim, kafka_settings, poller_database_url)
    async with running_poller(settings):
        await wait_for(lambda: _done(db, token_id), within=30, what="first backfill")
    truth = await sim.truth(seller)
    await snapshots.wait_matches(token_id, truth, within=20)
    # Half of them stored, as the processor would: the second backfill publishes only the other half.
    mine = sorted(
        (e for e in snapshots.latest.values() if e.token_id == token_id), key=lambda e: e.checkout_form_id
    )
    stored = mine[: len(mine) // 2]
    await store_orders(db, SnapshotReader(snapshots.consumer, latest={e.key: e for e in stored}), token_id)
    long_ago = datetime.now(UTC) - timedelta(days=70)
    async with db.begin() as conn:
        await conn.execute(
            text("UPDATE user_tokens SET event_cursor = :c, cursor_updated_at = :t WHERE id = :id"),
            {"c": str(int(long_ago.timestamp() * 1_000_000)), "t": long_ago, "id": token_id},
        )
    before = len(snapshots.all)
    async with running_poller(settings):
        await wait_for(lambda: _reason(db, token_id), within=20, what="the fall-back reason")
        await wait_for(lambda: _done(db, token_id), within=30, what="second backfill")
    await snapshots.drain()
    again = {e.checkout_form_id for e in snapshots.all[before:] if e.source == "backfill"}
    assert again == set(truth) - {e.checkout_form_id for e in stored}
    row = await token_row(db, token_id)
    assert int(row["event_cursor"]) > int(long_ago.timestamp() * 1_000_000)


async def _reason(db: AsyncEngine, token_id: object) -> bool:
    progress = (await token_row(db, token_id))["backfill_progress"]  # type: ignore[arg-type]
    return bool(progress and progress.get("reason") and "retention" in progress["reason"])
