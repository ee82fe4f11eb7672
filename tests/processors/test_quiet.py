"""`allegro-backup quiet`'s two halves: the worker's consumer lag from Kafka, the tokens' state from
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cli.quiet import consumer_lag
from core.settings import KafkaSettings, Settings
from db.models import SyncHistory, UserToken
from db.queries.quiet import busy_tokens, running_sync_runs
from tests.processors.factory import snapshot
from tests.processors.worker import Worker, produce, wait_until, worker_env


@pytest.mark.slow
async def test_consumer_lag_counts_unstored_snapshots_until_the_worker_has_read_them(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    app_id = f"a{uuid.uuid4().hex}"
    settings = Settings.model_validate(
        {
            "kafka": kafka_settings.model_dump(),
            "database": {"url": database_url},
            "processor": {"app_id": app_id},
        }
    )
    topics = [kafka_settings.snapshots_topic, kafka_settings.sync_runs_topic]
    token_id = uuid.uuid4()
    await produce(
        kafka_settings.bootstrap_servers,
        kafka_settings.snapshots_topic,
        [snapshot(token_id, f"f{n}", 1) for n in range(20)],
    )
    assert await consumer_lag(settings, topics) == {topics[0]: 20, topics[1]: 0}
    worker = Worker(worker_env(kafka_settings, database_url, app_id, tmp_path / "faust"), tmp_path / "w.log")
    worker.start()
    try:

        async def no_lag() -> bool:
            return sum((await consumer_lag(settings, topics)).values()) == 0

        await wait_until(no_lag, within=60, what="the worker's lag to reach zero", workers=[worker])
    finally:
        worker.kill()


async def test_tokens_that_backfill_wait_or_fail_are_busy_and_a_fresh_one_is_not(
    session: AsyncSession,
) -> None:
    now = datetime.now(UTC)
    done: dict[str, object] = {"backfill_completed_at": now, "last_success_at": now}
    rows: dict[str, dict[str, object]] = {
        "backfilling": {"last_success_at": now},
        "a request is pending": {**done, "reconcile_requested_at": now},
        "its last sync failed": {**done, "last_error": "boom"},
        "no successful journal read since": {**done, "last_success_at": now - timedelta(hours=1)},
        "fresh": done,
    }
    ids = {reason: uuid.uuid4() for reason in rows}
    for reason, fields in rows.items():
        await session.execute(
            insert(UserToken).values(id=ids[reason], user_id="u-quiet", status="active", **fields)
        )
    await session.execute(
        insert(SyncHistory).values(
            id=uuid.uuid4(),
            token_id=ids["fresh"],
            user_id="u-quiet",
            kind="journal",
            status="running",
            started_at=now,
        )
    )
    connection = await session.connection()
    busy = {
        t.token_id: t.reason for t in await busy_tokens(connection, fresh_after=now - timedelta(minutes=1))
    }
    for reason, token_id in ids.items():
        if reason == "fresh":
            assert token_id not in busy
        else:
            assert busy[token_id].startswith(reason)
    assert await running_sync_runs(connection) >= 1
