"""The adaptive journal schedule on real Kafka and PostgreSQL, Allegro simulated: quiet sellers are read
less often but within the bound, a quiet seller that starts selling is read fast again, quiet reads
leave no trace but their time, and several pollers together stay within the client id's budget."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from core.crypto import KeyRing
from core.settings import KafkaSettings, Settings
from core.topics import partition_ids
from producers.app import run_poller
from producers.metrics import PollerMetrics
from tests.producers.conftest import KEYS, Sim, SnapshotReader, make_settings, wait_for


async def link_fleet(
    sim: Sim, db: AsyncEngine, count: int, *, last_event_at: datetime | None = None
) -> list[tuple[uuid.UUID, str]]:
    """`count` sellers linked in bulk (`POST /_sim/fleet`), their rows stored as synced accounts with no
    history: (token id, seller id) each."""
    sellers = (await sim.control("POST", "/fleet", {"count": count}))["sellers"]
    keyring = KeyRing.parse(KEYS)
    now = datetime.now(UTC)
    linked = []
    async with db.begin() as conn:
        for seller in sellers:
            token_id = uuid.uuid4()
            await conn.exec_driver_sql(
                "INSERT INTO user_tokens (id, user_id, seller_id, login, status, access_token, refresh_token,"
                " access_expires_at, scope, cursor_updated_at, backfill_progress, backfill_completed_at,"
                " last_reconcile_at, last_event_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9,"
                " '{}'::jsonb, $9, $9, $10)",
                (
                    token_id,
                    f"user-{seller['seller_id']}",
                    seller["seller_id"],
                    seller["login"],
                    keyring.seal(seller["access_token"]),
                    keyring.seal(seller["refresh_token"]),
                    now + timedelta(hours=1),
                    seller["scope"],
                    now,
                    last_event_at,
                ),
            )
            linked.append((token_id, seller["seller_id"]))
    return linked


@asynccontextmanager
async def poller(settings: Settings, metrics: PollerMetrics | None = None) -> AsyncIterator[None]:
    """One in-process poller, stopped (and its task awaited) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_poller(settings, stop, metrics=metrics, session_timeout_ms=6000))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


def _events_requests(stats: dict[str, int]) -> int:
    return sum(n for key, n in stats.items() if key.startswith("GET /order/events "))


def _order_requests(stats: dict[str, int]) -> int:
    return sum(n for key, n in stats.items() if " /order/" in key)


async def test_a_quiet_seller_that_starts_selling_is_read_fast_again_within_one_quiet_interval(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    poller_database_url: str,
    snapshots: SnapshotReader,
) -> None:
    # Quiet sellers settle at an 8 s interval; a seller that sells is read every 0.25 s.
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={
            "journal_interval_seconds": 0.25,
            "journal_interval_recent_max_seconds": 8.0,
            "journal_interval_max_seconds": 8.0,
        },
    )
    [(token_id, seller)] = await link_fleet(sim, db, 1)
    async with poller(settings):
        # A quiet token's first poll already sets its interval to the bound (producers.schedule.Cadence):
        # the next read comes 4-8 s after the first (a first interval is shortened by up to half), then
        # every 7.2-8 s. The 8 s counted start 1 s after the first read, so the next one falls inside.
        await wait_for(lambda: _events_read(sim), within=30, what="the first journal read", every=0.1)
        await asyncio.sleep(1)
        before = _events_requests(await sim.stats())
        await asyncio.sleep(8)
        quiet_reads = _events_requests(await sim.stats()) - before
        assert 1 <= quiet_reads <= 2, (
            f"{quiet_reads} journal reads in 8 s of a quiet seller at an 8 s interval"
        )

        first = (await sim.control("POST", "/live-orders", {"seller_ids": [seller]}))["orders"][0]["id"]
        made = time.monotonic()
        key = f"{token_id}:{first}"
        await wait_for(
            lambda: _seen(snapshots, key), within=8 + 4, what="the first sale after quiet", every=0.1
        )
        first_wait = time.monotonic() - made
        # Selling again: the next sale is read at the short interval, far below the quiet 8 s.
        second = (await sim.control("POST", "/live-orders", {"seller_ids": [seller]}))["orders"][0]["id"]
        made = time.monotonic()
        key = f"{token_id}:{second}"
        await wait_for(lambda: _seen(snapshots, key), within=8, what="the second sale", every=0.1)
        second_wait = time.monotonic() - made
    assert first_wait <= 8 + 3, first_wait
    assert second_wait < 3.0, f"the second sale took {second_wait:.1f}s: the seller was not read fast again"


async def _events_read(sim: Sim) -> int:
    """The journal reads made so far (0 until the first one)."""
    return _events_requests(await sim.stats())


async def _seen(snapshots: SnapshotReader, key: str) -> bool:
    await snapshots.drain(0.1)
    return key in snapshots.latest


async def test_quiet_reads_stay_within_the_bound_and_leave_no_run_no_record_no_write(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    # 40 quiet sellers, at most 2 reads at once: every seller is still read at least every 2 s.
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={
            "journal_interval_seconds": 0.25,
            "journal_interval_recent_max_seconds": 1.0,
            "journal_interval_max_seconds": 2.0,
            "max_concurrent_tokens": 2,
            "poll_flush_seconds": 0.5,
        },
    )
    linked = await link_fleet(sim, db, 40)
    metrics = PollerMetrics.create()
    async with poller(settings, metrics):
        await wait_for(
            lambda: _all_polled(db, len(linked)), within=30, what="a first read of every seller", every=0.25
        )
        rows_before = await _rows(db)
        sync_runs_before = await _count_messages(kafka_settings, kafka_settings.sync_runs_topic)
        polls_before = _quiet_polls(metrics)
        worst = 0.0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = datetime.now(UTC)
            for row in (await _rows(db)).values():
                worst = max(worst, (now - row["last_polled_at"]).total_seconds())
            await asyncio.sleep(0.25)
        rows_after = await _rows(db)
        quiet = _quiet_polls(metrics) - polls_before
    # Bound 2 s, the flush every 0.5 s, a read's own duration and the sampling: 4 s is a wait past the bound.
    assert worst <= 4.0, f"a seller waited {worst:.1f}s for a read"
    assert quiet >= 40 * 10 / 2 * 0.8, f"only {quiet} quiet reads in 10 s"
    for token_id, _seller in linked:
        before, after = rows_before[token_id], rows_after[token_id]
        assert after["last_polled_at"] > before["last_polled_at"]
        # Nothing but the batched read times changed: no cursor write, no outcome write per read.
        assert after["updated_at"] == before["updated_at"]
        assert after["cursor_updated_at"] == before["cursor_updated_at"]
    async with db.connect() as conn:
        runs = (await conn.exec_driver_sql("SELECT count(*) FROM sync_history")).scalar_one()
    assert runs == 0
    assert await _count_messages(kafka_settings, kafka_settings.sync_runs_topic) == sync_runs_before == 0
    assert await _count_messages(kafka_settings, kafka_settings.snapshots_topic) == 0


async def test_two_pollers_together_stay_within_the_client_ids_budget(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    # 60 requests a minute for the client id, far below what 30 sellers read every 0.25 s would make.
    budget = 60
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        requests_per_minute=budget,
        poller={
            "journal_interval_seconds": 0.25,
            "journal_interval_recent_max_seconds": 0.25,
            "journal_interval_max_seconds": 0.25,
        },
    )
    await link_fleet(sim, db, 30)
    started = time.monotonic()
    async with poller(settings), poller(settings):
        # Well within one budget window (60 s) from the very start: no window may hold more than the budget.
        await asyncio.sleep(40)
        made = _order_requests(await sim.stats())
    assert time.monotonic() - started < 60
    assert made <= budget, f"{made} Allegro requests within one minute, budget {budget}"
    # The budget binds (the demand was far above it) and both processes polled.
    assert made >= budget * 0.3, made


async def test_polls_due_close_together_start_in_one_wake_up(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    # Every seller every 3 s (so polls may start up to 0.3 s early): 40 sellers make about 13 polls a
    # second, which start in rounds of several instead of one wake-up each.
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={
            "journal_interval_seconds": 3.0,
            "journal_interval_recent_max_seconds": 3.0,
            "journal_interval_max_seconds": 3.0,
            "poll_flush_seconds": 0.5,
        },
    )
    linked = await link_fleet(sim, db, 40)
    metrics = PollerMetrics.create()
    async with poller(settings, metrics):
        await wait_for(
            lambda: _all_polled(db, len(linked)), within=30, what="a first read of every seller", every=0.25
        )
        polls_before, rounds_before = _quiet_polls(metrics), _rounds(metrics)
        await asyncio.sleep(6)  # the length of the observation is the point
        polls, rounds = _quiet_polls(metrics) - polls_before, _rounds(metrics) - rounds_before
    assert polls >= 40 * 6 / 3 * 0.8, f"only {polls} quiet reads in 6 s"
    assert polls / rounds >= 2.5, f"{polls} polls started in {rounds} wake-ups"


def _rounds(metrics: PollerMetrics) -> float:
    return metrics.registry.get_sample_value("poller_poll_rounds_total") or 0.0


async def _all_polled(db: AsyncEngine, count: int) -> bool:
    rows = await _rows(db)
    return len(rows) == count and all(row["last_polled_at"] is not None for row in rows.values())


async def _rows(db: AsyncEngine) -> dict[uuid.UUID, dict[str, Any]]:
    async with db.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT id, last_polled_at, updated_at, cursor_updated_at FROM user_tokens"
        )
        return {row["id"]: dict(row) for row in result.mappings()}


def _quiet_polls(metrics: PollerMetrics) -> float:
    value = metrics.registry.get_sample_value("poller_journal_polls_total", {"outcome": "quiet"})
    return value or 0.0


async def _count_messages(kafka: KafkaSettings, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partition_ids(kafka.bootstrap_servers, topic)]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()
