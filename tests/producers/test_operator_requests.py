"""Requests an operator makes through the API, carried out by a running poller."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from db.queries.tokens import record_reconcile_request
from tests.producers.conftest import (
    Sim,
    SnapshotReader,
    make_settings,
    running_poller,
    sessions_for,
    wait_for,
)
from tests.producers.test_sync_faults import _field, _linked_and_synced


async def test_a_requested_reconcile_runs_on_the_next_cycle_long_before_its_interval(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)  # reconcile every hour
    _seller, token_id = await _linked_and_synced(sim, db, snapshots, settings, count=5)
    reconciled_before = await _field(db, token_id, "last_reconcile_at")
    assert reconciled_before is not None
    async with sessions_for(db)() as session, session.begin():
        user_id = await _field(db, token_id, "user_id")
        assert await record_reconcile_request(
            session, user_id=user_id, token_id=token_id, now=datetime.now(UTC)
        )

    async def reconciled() -> bool:
        after = await _field(db, token_id, "last_reconcile_at")
        return bool(
            after != reconciled_before and await _field(db, token_id, "reconcile_requested_at") is None
        )

    async with running_poller(settings):
        await wait_for(reconciled, within=30, what="the requested reconcile")
