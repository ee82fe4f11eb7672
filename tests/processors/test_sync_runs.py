"""The sync-runs handler against real PostgreSQL: lifecycle upserts that are safe out of order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from db.queries import run_ends
from processors.sync_runs import handle_sync_run_batch
from tests.processors.conftest import RecordingPublisher
from tests.processors.factory import raw

STARTED = datetime(2026, 1, 1, tzinfo=UTC)


def record(run_id: uuid.UUID, token_id: uuid.UUID, phase: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "sync_run_id": str(run_id),
        "token_id": str(token_id),
        "user_id": "user-1",
        "kind": "journal",
        "phase": phase,
        "at": (STARTED + timedelta(seconds=5)).isoformat(),
        "started_at": STARTED.isoformat(),
    } | fields


def values(records: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(r) for r in records]


async def test_a_late_progress_record_never_reopens_a_finished_run(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    run_id = uuid.uuid4()
    finished = record(run_id, token_id, "finished", events_read=10, orders_changed=4)
    late = record(run_id, token_id, "progress", events_read=3)
    await handle_sync_run_batch(
        pool, publisher, raw(values([record(run_id, token_id, "started"), finished])), dlq_topic="dlq"
    )
    await handle_sync_run_batch(
        pool, publisher, raw(values([late, record(run_id, token_id, "started")])), dlq_topic="dlq"
    )
    row = await pool.fetchrow("SELECT * FROM sync_history WHERE id = $1", run_id)
    assert (row["status"], row["events_read"], row["orders_changed"]) == ("finished", 10, 4)
    assert row["finished_at"] is not None


async def test_progress_counts_only_grow_and_failure_keeps_its_error(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    run_id = uuid.uuid4()
    batch = [record(run_id, token_id, "progress", events_read=n) for n in (5, 2)]
    batch.append(record(run_id, token_id, "failed", events_read=6, error="429 storm"))
    dead = await handle_sync_run_batch(pool, publisher, raw([*values(batch), b"{}"]), dlq_topic="dlq")
    row = await pool.fetchrow("SELECT * FROM sync_history WHERE id = $1", run_id)
    assert (row["status"], row["events_read"], row["error"]) == ("failed", 6, "429 storm")
    assert dead == 1 and len(publisher.sent["dlq"]) == 1


async def test_abandoned_runs_take_a_late_real_end_but_never_a_running_record(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID, engine: AsyncEngine
) -> None:
    ended, silent, fresh = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    started = [record(run_id, token_id, "started") for run_id in (ended, silent, fresh)]
    await handle_sync_run_batch(pool, publisher, raw(values(started)), dlq_topic="dlq")
    await pool.execute(
        "UPDATE sync_history SET updated_at = now() - interval '1 hour' WHERE id = ANY($1::uuid[])",
        [ended, silent],
    )
    async with engine.begin() as connection:
        session = AsyncSession(bind=connection)
        closed = await run_ends.abandon_silent_runs(
            session, lease=timedelta(minutes=15), reason="abandoned: test"
        )
    assert closed >= 2
    statuses = {
        row["id"]: row["status"]
        for row in await pool.fetch(
            "SELECT id, status FROM sync_history WHERE id = ANY($1::uuid[])", [ended, silent, fresh]
        )
    }
    assert statuses == {ended: "abandoned", silent: "abandoned", fresh: "running"}
    late = [
        record(ended, token_id, "failed", error="cancelled: stopped", events_read=3),
        record(silent, token_id, "progress", events_read=7),
    ]
    await handle_sync_run_batch(pool, publisher, raw(values(late)), dlq_topic="dlq")
    rows = {
        row["id"]: row
        for row in await pool.fetch("SELECT * FROM sync_history WHERE id = ANY($1::uuid[])", [ended, silent])
    }
    assert (rows[ended]["status"], rows[ended]["error"], rows[ended]["events_read"]) == (
        "failed",
        "cancelled: stopped",
        3,
    )
    assert (rows[silent]["status"], rows[silent]["events_read"]) == ("abandoned", 0)
    assert rows[silent]["finished_at"] is not None


async def test_a_takeover_abandons_only_that_tokens_running_runs(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID, engine: AsyncEngine
) -> None:
    other_token = uuid.uuid4()
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    batch = [record(mine, token_id, "started"), record(theirs, other_token, "started")]
    await handle_sync_run_batch(pool, publisher, raw(values(batch)), dlq_topic="dlq")
    async with engine.begin() as connection:
        closed = await run_ends.abandon_runs_of_token(
            AsyncSession(bind=connection), token_id, reason="abandoned: x"
        )
    assert closed == 1
    assert await pool.fetchval("SELECT status FROM sync_history WHERE id = $1", mine) == "abandoned"
    assert await pool.fetchval("SELECT status FROM sync_history WHERE id = $1", theirs) == "running"
