"""The poller process outlives its dependencies: a PostgreSQL of the test's own stopped under a running
poller, a Kafka node of the test's own that starts only after the poller did; and sync runs that end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cli.processes import Child, ProcessGroup, tail
from core.contract import SyncRunRecord, decode_sync_run
from core.settings import KafkaSettings
from core.topics import ensure_topics, topic_specs
from tests.environments import free_port, service_env
from tests.private_services import PrivateService, migrated_postgres
from tests.processors.worker import consume_all
from tests.producers.conftest import KEYS, Sim, make_settings, running_poller, start_link, token_row, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path / "logs")
    yield group
    group.stop_all(timeout=20)


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivateService]:
    with migrated_postgres(tmp_path) as service:
        yield service


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateService]:
    """A Kafka node on free ports, NOT started: the test starts it when it wants."""
    service = PrivateService(tmp_path, "kafka")
    try:
        yield service
    finally:
        service.remove()


@pytest.fixture
async def private_db(private_postgres: PrivateService) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(private_postgres.database_url, pool_size=2, pool_pre_ping=True)
    yield engine
    await engine.dispose()


def start_poller(
    group: ProcessGroup,
    sim: Sim,
    kafka: KafkaSettings,
    database_url: str,
    tmp: Path,
    *,
    metrics_port: int = 0,
) -> Child:
    """`python -m producers run` as its own process, on this simulator, these topics and this database."""
    env = {
        **service_env(kafka, database_url, sim.url, free_port(), tmp),
        "ALLEGRO__CLIENT_ID": sim.client_id,
        "CRYPTO__KEYS": KEYS,
        "POLLER__JOURNAL_INTERVAL_SECONDS": "0.5",
        "POLLER__RECONCILE_INTERVAL_SECONDS": "3600",
    }
    return group.start("poller", ["producers", "run", "--metrics-port", str(metrics_port)], env)


def alive(child: Child) -> None:
    assert child.process.poll() is None, (
        f"the poller exited ({child.process.returncode}):\n{tail(child.log_path)}"
    )


async def database_up(metrics_port: int) -> float:
    """The poller's `poller_dependency_up{dependency="postgresql"}`."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "poller_dependency_up" and sample.labels.get("dependency") == "postgresql"
    )


async def linked_seller(sim: Sim, db: AsyncEngine, orders: int) -> tuple[str, uuid.UUID]:
    seller = await sim.seller()
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": orders, "days_back": 5})
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    return seller, token_id


async def caught_up(db: AsyncEngine, token_id: uuid.UUID) -> bool:
    row = await token_row(db, token_id)
    return row["backfill_completed_at"] is not None and row["last_success_at"] is not None


async def test_a_running_poller_survives_a_postgresql_stop_and_resumes_when_it_is_back(
    sim: Sim,
    private_postgres: PrivateService,
    private_db: AsyncEngine,
    kafka_settings: KafkaSettings,
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    seller, token_id = await linked_seller(sim, private_db, orders=10)
    port = free_port()
    poller = start_poller(
        processes, sim, kafka_settings, private_postgres.database_url, tmp_path, metrics_port=port
    )
    await wait_for(lambda: caught_up(private_db, token_id), within=60, what="the first sync")
    assert await database_up(port) == 1
    cursor_before = (await token_row(private_db, token_id))["event_cursor"]

    await private_db.dispose()
    private_postgres.stop()
    # Before the fix the idle poller exited within a second; a few scans and token cycles must pass.
    for _ in range(8):
        await asyncio.sleep(1)
        alive(poller)
    assert await database_up(port) == 0  # not ready, and it says so
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 5, "days_back": 0.0005})
    await asyncio.to_thread(private_postgres.start)

    async def cursor_moved() -> bool:
        return bool((await token_row(private_db, token_id))["event_cursor"] != cursor_before)

    await wait_for(cursor_moved, within=60, what="the journal after PostgreSQL came back")
    alive(poller)
    assert await database_up(port) == 1
    assert "scan failed, PostgreSQL unavailable" in poller.log_path.read_text()


async def test_a_poller_started_while_postgresql_is_down_syncs_once_it_is_back(
    sim: Sim,
    private_postgres: PrivateService,
    private_db: AsyncEngine,
    kafka_settings: KafkaSettings,
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    _seller, token_id = await linked_seller(sim, private_db, orders=10)
    await private_db.dispose()
    private_postgres.stop()
    port = free_port()
    poller = start_poller(
        processes, sim, kafka_settings, private_postgres.database_url, tmp_path, metrics_port=port
    )
    for _ in range(6):
        await asyncio.sleep(1)
        alive(poller)
    assert await database_up(port) == 0
    await asyncio.to_thread(private_postgres.start)
    await wait_for(lambda: caught_up(private_db, token_id), within=60, what="the first sync after PostgreSQL")
    alive(poller)


async def test_a_poller_started_while_kafka_is_down_syncs_once_the_broker_starts(
    sim: Sim,
    db: AsyncEngine,
    poller_database_url: str,
    private_kafka: PrivateService,
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=private_kafka.bootstrap).prefixed(
        f"k{uuid.uuid4().hex[:8]}", partitions=2
    )
    _seller, token_id = await linked_seller(sim, db, orders=10)
    poller = start_poller(processes, sim, kafka, poller_database_url, tmp_path)
    for _ in range(6):  # it exited within a second before
        await asyncio.sleep(1)
        alive(poller)
    await asyncio.to_thread(private_kafka.start)
    admin = AIOKafkaAdminClient(bootstrap_servers=private_kafka.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, topic_specs(kafka), 1)
    finally:
        await admin.close()
    await wait_for(lambda: caught_up(db, token_id), within=90, what="the first sync after Kafka started")
    alive(poller)


async def test_a_run_cancelled_mid_way_ends_failed_and_one_left_running_is_abandoned_on_takeover(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str
) -> None:
    # A slow backfill: 6 list pages at 1.5 s each.
    _seller, token_id = await linked_seller(sim, db, orders=600)
    await sim.control("PUT", "/faults", {"latency_ms": 1500})
    settings = make_settings(sim, kafka_settings, poller_database_url)
    orphan = uuid.uuid4()
    await insert_running_run(db, orphan, token_id)
    pages = "GET /order/checkout-forms 200"
    pages_before = (await sim.stats()).get(pages, 0)

    async def a_page_served() -> bool:
        return (await sim.stats()).get(pages, 0) > pages_before

    async with running_poller(settings):
        started = await wait_for(
            lambda: run_record(kafka_settings, token_id, "backfill", "started"), within=60, what="a backfill"
        )
        # The takeover closed the run nobody ended.
        assert await history_status(db, orphan) == "abandoned"
        await wait_for(a_page_served, within=30, what="the backfill's first list page")  # mid-way
    records = await wait_for(
        lambda: run_record(kafka_settings, token_id, "backfill", "failed"),
        within=10,
        what="the failed record",
    )
    assert records.sync_run_id == started.sync_run_id
    assert records.error is not None and records.error.startswith("cancelled")
    assert records.finished_at is not None


async def insert_running_run(db: AsyncEngine, run_id: uuid.UUID, token_id: uuid.UUID) -> None:
    async with db.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO sync_history (id, token_id, user_id, kind, status, started_at)"
            " VALUES ($1, $2, 'user-x', 'journal', 'running', now() - interval '1 hour')",
            (run_id, token_id),
        )


async def history_status(db: AsyncEngine, run_id: uuid.UUID) -> str:
    async with db.connect() as conn:
        row = await conn.exec_driver_sql("SELECT status FROM sync_history WHERE id = $1", (run_id,))
        return str(row.scalar_one())


async def run_record(
    kafka: KafkaSettings, token_id: uuid.UUID, kind: str, phase: str
) -> SyncRunRecord | None:
    """The first record of this token, kind and phase on the sync-runs topic, if any yet."""
    for message in await consume_all(kafka.bootstrap_servers, kafka.sync_runs_topic, kafka.partitions):
        record = decode_sync_run(message.value)
        if record.token_id == token_id and record.kind == kind and record.phase == phase:
            return record
    return None


async def test_a_poller_and_a_worker_outlive_a_long_kafka_outage_and_the_orders_arrive_after_it(
    sim: Sim,
    db: AsyncEngine,
    poller_database_url: str,
    private_kafka: PrivateService,
    processes: ProcessGroup,
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=private_kafka.bootstrap).prefixed(
        f"l{uuid.uuid4().hex[:8]}", partitions=2
    )
    await asyncio.to_thread(private_kafka.start)
    seller, token_id = await linked_seller(sim, db, orders=10)
    env = {**service_env(kafka, poller_database_url, sim.url, free_port(), tmp_path), "LOG_LEVEL": "WARNING"}
    worker = processes.start("worker", ["processors", "worker", "-l", "warn", "--without-web"], env)
    poller = start_poller(processes, sim, kafka, poller_database_url, tmp_path)
    await wait_for(lambda: stored_orders(db, token_id, 10), within=90, what="the backfill stored")

    await asyncio.to_thread(private_kafka.stop)
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": 5, "days_back": 0.0005})
    # Longer than every client timeout involved (requests 30 s, sessions 10 s, Faust's 40 s request).
    for _ in range(60):
        await asyncio.sleep(1)
        alive(poller)
        assert worker.process.poll() is None, tail(worker.log_path)
    await asyncio.to_thread(private_kafka.start)
    await wait_for(lambda: stored_orders(db, token_id, 15), within=120, what="the new orders stored")
    alive(poller)
    assert worker.process.poll() is None, tail(worker.log_path)


async def stored_orders(db: AsyncEngine, token_id: uuid.UUID, at_least: int) -> bool:
    async with db.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM orders WHERE token_id = :t"), {"t": token_id})
    return int(count or 0) >= at_least
