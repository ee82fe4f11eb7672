"""The journal under faults: duplicates, reordering, drops, publish failures, token trouble, 429s."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from tests.producers.conftest import (
    Sim,
    SnapshotReader,
    make_settings,
    open_snapshot_reader,
    running_poller,
    start_link,
    store_orders,
    token_row,
    wait_for,
)

FORM_GET = "GET /order/checkout-forms/{id} 200"
FORM_LIST = "GET /order/checkout-forms 200"


async def _linked_and_synced(
    sim: Sim,
    db: AsyncEngine,
    snapshots: SnapshotReader,
    settings: Any,
    *,
    count: int = 40,
    days_back: float = 20,
) -> tuple[str, uuid.UUID]:
    """A seller linked, backfilled and caught up, its orders stored as the processor would."""
    seller = await sim.seller()
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": count, "days_back": days_back})
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    async with running_poller(settings):
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=40)
        await wait_for(lambda: _journal_after_backfill(db, token_id), within=20, what="a journal run")
    await store_orders(db, snapshots, token_id)
    return seller, token_id


async def _journal_after_backfill(db: AsyncEngine, token_id: uuid.UUID) -> bool:
    row = await token_row(db, token_id)
    done, synced = row["backfill_completed_at"], row["last_success_at"]
    return done is not None and synced is not None and synced > done


async def _field(db: AsyncEngine, token_id: uuid.UUID, name: str) -> Any:
    return (await token_row(db, token_id))[name]


async def _set(db: AsyncEngine, token_id: uuid.UUID, **values: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    async with db.begin() as conn:
        await conn.execute(
            text(f"UPDATE user_tokens SET {assignments} WHERE id = :id"),  # noqa: S608 - names are ours
            {**values, "id": token_id},
        )


async def test_duplicated_and_reordered_events_fetch_no_stored_revision(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    _seller, token_id = await _linked_and_synced(sim, db, snapshots, settings)
    latest_cursor = await _field(db, token_id, "event_cursor")
    # Read the whole retained journal again, every event duplicated or swapped at random.
    await _set(db, token_id, event_cursor="0", cursor_updated_at=datetime.now(UTC))
    await sim.control("PUT", "/faults", {"duplicate_events": 0.5, "reorder_events": 0.5})
    await sim.control("POST", "/stats/reset")
    async with running_poller(settings):
        await wait_for(
            lambda: _cursor_at_least(db, token_id, int(latest_cursor)), within=20, what="the journal re-read"
        )
    stats = await sim.stats()
    assert stats.get("GET /order/events 200", 0) >= 1
    assert stats.get(FORM_GET, 0) == 0
    assert stats.get(FORM_LIST, 0) == 0


async def _cursor_at_least(db: AsyncEngine, token_id: uuid.UUID, value: int) -> bool:
    cursor = await _field(db, token_id, "event_cursor")
    return cursor is not None and int(cursor) >= value


async def test_dropped_events_are_caught_by_reconciliation(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={"reconcile_interval_seconds": 1.0, "reconcile_overlap_seconds": 60},
    )
    seller, token_id = await _linked_and_synced(sim, db, snapshots, settings)
    await sim.control("PUT", "/faults", {"drop_events": 1.0})
    created = (await sim.control("POST", f"/sellers/{seller}/orders", {"count": 5, "days_back": 0.0005}))[
        "ids"
    ]
    async with running_poller(settings):
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=30)
    assert {e.source for e in snapshots.all if e.checkout_form_id in created} == {"reconcile"}


async def test_cursor_stays_when_publishing_fails_and_nothing_is_skipped_after_recovery(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    seller, token_id = await _linked_and_synced(sim, db, snapshots, settings)
    cursor_before = await _field(db, token_id, "event_cursor")
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 12, "days_back": 0.0005})
    # Publishing fails for real: the snapshots topic does not exist yet and the broker does not auto-create.
    missing = kafka_settings.model_copy(update={"snapshots_topic": f"{kafka_settings.snapshots_topic}.later"})
    failing = make_settings(sim, missing, poller_database_url)
    async with running_poller(failing, kafka_request_timeout_ms=1500):
        await wait_for(lambda: _field(db, token_id, "last_error"), within=30, what="a failed journal run")
        assert await _field(db, token_id, "event_cursor") == cursor_before
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(missing.snapshots_topic, 2, 1)])
        finally:
            await admin.close()
        await wait_for(
            lambda: _cursor_moved_past(db, token_id, cursor_before),
            within=40,
            what="the cursor after recovery",
        )
    async with open_snapshot_reader(missing) as recovered:
        truth = await sim.truth(seller)
        stored = set(snapshots.revisions(token_id).items())
        new = {form_id: rev for form_id, rev in truth.items() if (form_id, rev) not in stored}
        assert len(new) >= 12
        await recovered.wait_matches(token_id, new, within=20)


async def _cursor_moved_past(db: AsyncEngine, token_id: uuid.UUID, before: str) -> bool:
    row = await token_row(db, token_id)
    return row["event_cursor"] != before and row["last_error"] is None


async def test_expired_access_token_is_refreshed_and_a_revoked_one_needs_reauth_while_others_go_on(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    kept, kept_token = await _linked_and_synced(sim, db, snapshots, settings, count=10)
    revoked, revoked_token = await _linked_and_synced(sim, db, snapshots, settings, count=10)
    sealed_before = await _field(db, kept_token, "refresh_token")
    async with running_poller(settings):
        await sim.control("POST", "/tokens/expire", {"seller_id": kept})
        await sim.control("POST", "/tokens/revoke", {"seller_id": revoked})
        await sim.control("POST", f"/sellers/{kept}/orders", {"count": 5, "days_back": 0.0005})
        await sim.control("POST", f"/sellers/{revoked}/orders", {"count": 5, "days_back": 0.0005})
        await wait_for(
            lambda: _is(db, revoked_token, "status", "needs_reauth"), within=20, what="needs_reauth"
        )
        await snapshots.wait_matches(kept_token, await sim.truth(kept), within=30)
    assert await _field(db, kept_token, "status") == "active"
    assert await _field(db, kept_token, "refresh_token") != sealed_before


async def _is(db: AsyncEngine, token_id: uuid.UUID, name: str, value: Any) -> bool:
    return bool(await _field(db, token_id, name) == value)


async def test_a_429_burst_pauses_the_client_and_the_sync_resumes(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    seller, token_id = await _linked_and_synced(sim, db, snapshots, settings, count=10)
    await sim.control("POST", "/stats/reset")
    await sim.control("PUT", "/faults", {"burst_429": 3})
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 5, "days_back": 0.0005})
    async with running_poller(settings):
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=30)
    stats = await sim.control("GET", "/stats")
    assert stats["rate_limited"] == 3


async def test_a_steady_run_within_the_budget_provokes_no_429(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    budget = 600
    await sim.control("PUT", "/faults", {"rate_limit_per_min": budget, "block_seconds": 60})
    seller = await sim.seller()
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 30, "days_back": 20})
    await start_link(sim, db, user_id="user-budget", seller_id=seller)
    # Journal polls every 20 ms would make ~50 requests a second without the governor.
    tight = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={"journal_interval_seconds": 0.02, "journal_schedule": "fixed"},
        requests_per_minute=budget,
    )
    async with running_poller(tight):
        await asyncio.sleep(5)
    stats = await sim.control("GET", "/stats")
    assert stats["rate_limited"] == 0
    made = sum(n for key, n in stats["requests"].items() if key.startswith("GET /order/"))
    # A process takes up a share it gains evenly over one window (producers.budget): at most 5 s of a
    # 600-a-minute budget once the group assigned it partitions, where unchecked polls would make 250.
    assert 5 <= made <= budget * 5 / 60 + 2
