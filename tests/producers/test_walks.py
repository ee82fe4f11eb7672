"""Backfill and reconcile walks are complete while Allegro's list changes under them (simulator → poller →
Kafka → worker → PostgreSQL): a short page, a purge and a merge during a backfill, updatedAt moving during
a reconcile. Each asserts that every form the simulator showed is stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from allegro_api import CheckoutFormPage
from core.settings import KafkaSettings
from producers.windows import is_short
from tests.processors.worker import Worker
from tests.producers.conftest import (
    Sim,
    SnapshotReader,
    make_settings,
    running_poller,
    start_link,
    token_row,
    wait_for,
)
from tests.producers.pipeline import stored_orders, worker

__all__ = ["worker"]

FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"


def test_the_handed_short_page_is_not_taken_for_the_end() -> None:
    # Field case short-page: the page at offset 100 of 250 came back with 97 forms.
    page = CheckoutFormPage.from_json((FIELD_CASES / "E08.page.json").read_bytes(), offset=100, limit=100)
    assert (len(page.forms), page.count, page.total_count) == (97, 97, 250)
    assert is_short(page, offset=100)
    full = CheckoutFormPage(forms=page.forms, count=97, total_count=197, offset=100, limit=100)
    assert not is_short(full, offset=100)


async def _seller_with(sim: Sim, count: int) -> tuple[str, list[str]]:
    seller = await sim.seller()
    created = await sim.control(
        "POST", f"/sellers/{seller}/orders", {"count": count, "days_back": 300, "with_events": False}
    )
    return seller, list(created["ids"])


async def _all_ids(sim: Sim, seller: str) -> dict[str, dict[str, Any]]:
    """Every order the simulator ever held for the seller (merged and purged ones too)."""
    data = await sim.control("GET", f"/sellers/{seller}/truth?forms=false")
    return {order["id"]: order for order in data["orders"]}


async def _wait_stored(database_url: str, token_id: uuid.UUID, ids: set[str], within: float) -> None:
    async def all_there() -> bool:
        return ids <= set(await stored_orders(database_url, token_id))

    try:
        await wait_for(all_there, within=within, what="every order stored", every=0.5)
    except AssertionError:
        missing = ids - set(await stored_orders(database_url, token_id))
        raise AssertionError(
            f"{len(missing)} of {len(ids)} orders never stored, e.g. {sorted(missing)[:3]}"
        ) from None


async def _backfill_done(db: AsyncEngine, token_id: uuid.UUID) -> bool:
    return (await token_row(db, token_id))["backfill_completed_at"] is not None


async def _count_stored(database_url: str, token_id: uuid.UUID, at_least: int) -> bool:
    return len(await stored_orders(database_url, token_id)) >= at_least


async def test_a_short_page_does_not_end_the_backfill(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    seller, ids = await _seller_with(sim, 250)
    await sim.control("PUT", "/faults", {"short_pages": 1})
    token_id = await start_link(sim, db, user_id="user-short", seller_id=seller)
    async with running_poller(make_settings(sim, kafka_settings, poller_database_url)):
        await wait_for(lambda: _backfill_done(db, token_id), within=60, what="the backfill")
        await _wait_stored(poller_database_url, token_id, set(ids), within=60)
    assert (await sim.control("GET", "/faults"))["short_pages"] == 0, "the short page was never served"


async def _backfill_with_a_change_after_the_first_page(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    database_url: str,
    seller: str,
    change: Any,
) -> uuid.UUID:
    """Link the seller; hold the walk after its first list page until that page is stored, run `change`."""
    await sim.control("PUT", "/faults", {"hold_lists_after": 1})
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    async with running_poller(make_settings(sim, kafka_settings, database_url)):
        await wait_for(
            lambda: _count_stored(database_url, token_id, 100), within=60, what="the first page stored"
        )
        await change()
        await sim.control("PUT", "/faults", {"hold_lists_after": -1})
        await wait_for(lambda: _backfill_done(db, token_id), within=60, what="the backfill")
        await _wait_stored(database_url, token_id, set(await _all_ids(sim, seller)), within=60)
    return token_id


async def test_a_purge_of_the_oldest_orders_during_a_backfill_skips_none(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    seller, ids = await _seller_with(sim, 400)
    truth = (await sim.control("GET", f"/sellers/{seller}/truth"))["orders"]
    bought = {o["id"]: max(i["boughtAt"] for i in o["form"]["lineItems"]) for o in truth}

    async def purge_oldest() -> None:
        # Allegro's daily purge takes the oldest orders: exactly where the backfill began.
        answer = await sim.control("POST", "/purge", {"before": bought[ids[10]]})
        assert answer["orders"] == 10

    token_id = await _backfill_with_a_change_after_the_first_page(
        sim, db, kafka_settings, poller_database_url, seller, purge_oldest
    )
    stored = await stored_orders(poller_database_url, token_id)
    assert set(ids) <= set(stored)


async def test_a_merge_of_the_two_oldest_after_the_first_page_skips_none(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    seller, ids = await _seller_with(sim, 400)
    merged: list[str] = []

    async def merge_oldest() -> None:
        merged.append((await sim.control("POST", f"/sellers/{seller}/merge", {"ids": ids[:2]}))["id"])

    token_id = await _backfill_with_a_change_after_the_first_page(
        sim, db, kafka_settings, poller_database_url, seller, merge_oldest
    )
    await _wait_stored(poller_database_url, token_id, {*ids, *merged}, within=30)

    async def linked() -> bool:
        stored = await stored_orders(poller_database_url, token_id)
        return all(stored[old]["superseded_by"] == merged[0] for old in ids[:2])

    await wait_for(linked, within=20, what="the merged forms linked to their successor")


async def test_a_reconcile_misses_nothing_while_updated_at_moves(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    seller, ids = await _seller_with(sim, 300)
    token_id = await start_link(sim, db, user_id="user-reconcile", seller_id=seller)
    settings = make_settings(sim, kafka_settings, poller_database_url)
    async with running_poller(settings):
        await wait_for(lambda: _backfill_done(db, token_id), within=60, what="the backfill")
        await _wait_stored(poller_database_url, token_id, set(ids), within=60)
    # 250 changes nobody announces (their events are lost): only a reconcile can find them.
    await sim.control("PUT", "/faults", {"drop_events": 1.0})
    changed = (await sim.control("POST", f"/sellers/{seller}/mutate-random", {"count": 250}))["ids"]
    truth = (await sim.control("GET", f"/sellers/{seller}/truth"))["orders"]
    before = {o["id"]: o["revision"] for o in truth}
    first_page = sorted(changed, key=lambda i: next(o["form"]["updatedAt"] for o in truth if o["id"] == i))[
        :20
    ]
    async with db.begin() as conn:
        await conn.execute(
            text("UPDATE user_tokens SET last_reconcile_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(hours=2), "id": token_id},
        )
    await sim.control("PUT", "/faults", {"hold_lists_after": 1})
    async with running_poller(settings):
        await wait_for(lambda: _list_held(sim), within=30, what="the reconcile's first page", every=0.1)
        # Forms of the first page change again while the walk is held: they move past the window's end.
        for form_id in first_page:
            await sim.control("POST", f"/sellers/{seller}/orders/{form_id}/mutate", {"buyer_edit": True})
        await sim.control("PUT", "/faults", {"hold_lists_after": -1})

        async def caught_up() -> bool:
            stored = await stored_orders(poller_database_url, token_id)
            return all(
                form_id in stored and stored[form_id]["revision"] == before[form_id]
                for form_id in changed
                if form_id not in first_page
            )

        await wait_for(caught_up, within=60, what="every unannounced change stored", every=0.5)


async def _list_held(sim: Sim) -> bool:
    return bool((await sim.control("GET", "/faults"))["hold_lists_after"] == 0)


@pytest.mark.slow
async def test_a_rolling_purge_during_a_12000_order_backfill_skips_no_visible_order(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    seller, ids = await _seller_with(sim, 12_000)
    truth = (await sim.control("GET", f"/sellers/{seller}/truth"))["orders"]
    bought = {o["id"]: max(i["boughtAt"] for i in o["form"]["lineItems"]) for o in truth}
    # Slow enough that the purge below runs all through the walk.
    await sim.control("PUT", "/faults", {"latency_ms": 40})
    token_id = await start_link(sim, db, user_id="user-rolling", seller_id=seller)
    purged = 0
    async with running_poller(make_settings(sim, kafka_settings, poller_database_url)):
        # Allegro's purge takes the oldest orders, where the backfill starts: 100 more every 0.3 s.
        while not await _backfill_done(db, token_id) and purged + 100 < len(ids):
            purged += (await sim.control("POST", "/purge", {"before": bought[ids[purged + 100]]}))["orders"]
            await asyncio.sleep(0.3)
        await wait_for(lambda: _backfill_done(db, token_id), within=240, what="the backfill")
        visible = await sim.truth(seller)
        await snapshots.wait_matches(token_id, visible, within=60)
    published = set(snapshots.revisions(token_id))
    print(  # noqa: T201 - the measurement this test exists for
        f"rolling purge: {purged} purged during the walk, {len(visible)} visible at the end, "
        f"{len(set(visible) - published)} visible never published, {len(published)} published"
    )
