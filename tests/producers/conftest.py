"""Poller test harness: the simulator served by uvicorn on a free loopback port, a database of our own,
per-test Kafka topics, linking through the real device flow, and a reader of the snapshots topic."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from allegro_api import AllegroAuth
from core.contract import SnapshotEnvelope, decode_snapshot
from core.crypto import KeyRing
from core.settings import KafkaSettings, Settings
from core.topics import partition_ids
from db.migrate import create_database, sibling_database_url, upgrade
from producers.app import run_poller
from simulator.app import create_app
from simulator.config import SimulatorConfig
from tests.environments import free_port

KEYS = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture(scope="session")
def poller_database_url(_services: tuple[str, str]) -> str:
    """A migrated database of the poller tests' own, so no other suite's token rows are polled."""
    url = sibling_database_url(_services[0], "producers_test")
    create_database(url)
    upgrade(url, "head")
    return url


@pytest.fixture
async def db(poller_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the poller database, emptied before the test."""
    engine = create_async_engine(poller_database_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "TRUNCATE user_tokens, orders, order_revisions, sync_history, form_retries"
        )
    yield engine
    await engine.dispose()


@dataclass
class Sim:
    """A running simulator and a control client for it."""

    url: str
    http: httpx.AsyncClient
    client_id: str
    app: Any

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API and return its JSON."""
        response = await self.http.request(method, f"{self.url}/_sim{path}", json=body, timeout=120)
        response.raise_for_status()
        return response.json()

    async def seller(self) -> str:
        """Create a seller; returns its id."""
        return str((await self.control("POST", "/sellers", {}))["seller_id"])

    async def truth(self, seller_id: str) -> dict[str, str]:
        """Visible orders of the seller: id -> current revision."""
        data = await self.control("GET", f"/sellers/{seller_id}/truth?forms=false")
        return {o["id"]: o["revision"] for o in data["orders"] if not o["purged"] and not o["merged_into"]}

    async def stats(self) -> dict[str, int]:
        """Request counters by 'METHOD route status'."""
        data: dict[str, int] = (await self.control("GET", "/stats"))["requests"]
        return data


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """The simulator under uvicorn on a free port, a client id of its own, device-flow interval 0."""
    port = free_port()
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    config = SimulatorConfig(
        seed=7, client_id=client_id, public_url=f"http://127.0.0.1:{port}", device_poll_interval=0
    )
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient() as http:
        yield Sim(f"http://127.0.0.1:{port}", http, client_id, app)
    server.should_exit = True
    await task


def make_settings(
    sim: Sim, kafka: KafkaSettings, database_url: str, *, poller: dict[str, Any] | None = None, **allegro: Any
) -> Settings:
    """Settings pointing at the simulator, the test's topics and the poller database (passed as dicts so
    that DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS from the environment do not override them)."""
    return Settings(
        kafka=kafka.model_dump(),
        database={"url": database_url},
        allegro={"auth_url": sim.url, "api_url": sim.url, "client_id": sim.client_id, **allegro},
        crypto={"keys": KEYS},
        poller={
            "journal_interval_seconds": 0.5,
            # Quiet sellers are read at least every 2 s here (the adaptive schedule's bounds, shortened).
            "journal_interval_recent_max_seconds": 1.0,
            "journal_interval_max_seconds": 2.0,
            "poll_flush_seconds": 0.5,
            "link_poll_seconds": 0.3,
            "reconcile_interval_seconds": 3600,
            **(poller or {}),
        },
    )


async def start_link(
    sim: Sim, engine: AsyncEngine, *, user_id: str, seller_id: str, approve: bool = True
) -> uuid.UUID:
    """Start a device flow as the API would (a pending row with the sealed device code), approve it."""
    auth = AllegroAuth(sim.http, auth_url=sim.url, client_id=sim.client_id, client_secret="demo-secret")
    device = await auth.start_device_flow("allegro:api:orders:read")
    if approve:
        await sim.control("POST", "/device/approve", {"user_code": device.user_code, "seller_id": seller_id})
    token_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO user_tokens (id, user_id, status, device_code, user_code, verification_uri,"
            " device_expires_at, device_interval, device_next_poll_at)"
            " VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8)",
            (
                token_id,
                user_id,
                KeyRing.parse(KEYS).seal(device.device_code),
                device.user_code,
                device.verification_uri,
                device.expires_at(now),
                device.interval,
                now,
            ),
        )
    return token_id


async def token_row(engine: AsyncEngine, token_id: uuid.UUID) -> dict[str, Any]:
    """The token row as a dict."""
    async with engine.connect() as conn:
        row = (
            (await conn.exec_driver_sql("SELECT * FROM user_tokens WHERE id = $1", (token_id,)))
            .mappings()
            .one()
        )
    return dict(row)


async def wait_for(predicate: Callable[[], Any], *, within: float, what: str, every: float = 0.2) -> Any:
    """Poll an (async) predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class SnapshotReader:
    """Reads the snapshots topic from the start; keeps the latest envelope per key and every message."""

    consumer: AIOKafkaConsumer
    latest: dict[str, SnapshotEnvelope] = field(default_factory=dict)
    all: list[SnapshotEnvelope] = field(default_factory=list)

    async def drain(self, seconds: float = 0.5) -> None:
        """Read whatever has arrived."""
        batches = await self.consumer.getmany(timeout_ms=int(seconds * 1000), max_records=5000)
        for messages in batches.values():
            for message in messages:
                envelope = decode_snapshot(message.value)
                self.all.append(envelope)
                self.latest[envelope.key] = envelope

    def revisions(self, token_id: uuid.UUID) -> dict[str, str | None]:
        """checkout_form_id -> latest published revision, for one token (gone forms excluded)."""
        return {
            e.checkout_form_id: e.revision
            for e in self.latest.values()
            if e.token_id == token_id and e.gone is None
        }

    async def wait_matches(self, token_id: uuid.UUID, truth: dict[str, str], *, within: float) -> None:
        """Wait until the topic's latest revision of every order equals the truth."""

        async def matches() -> bool:
            await self.drain()
            seen = self.revisions(token_id)
            return all(seen.get(form_id) == revision for form_id, revision in truth.items())

        try:
            await wait_for(matches, within=within, what="the snapshots topic to match the truth", every=0)
        except AssertionError:
            seen = self.revisions(token_id)
            missing = [f for f, r in truth.items() if seen.get(f) != r]
            raise AssertionError(
                f"{len(missing)} of {len(truth)} orders differ, e.g. {missing[:3]}"
            ) from None


@contextlib.asynccontextmanager
async def open_snapshot_reader(kafka_settings: KafkaSettings) -> AsyncIterator[SnapshotReader]:
    """A reader of the settings' snapshots topic, from its beginning."""
    topic = kafka_settings.snapshots_topic
    partitions = await partition_ids(kafka_settings.bootstrap_servers, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        yield SnapshotReader(consumer)
    finally:
        await consumer.stop()


@pytest.fixture
async def snapshots(kafka_settings: KafkaSettings) -> AsyncIterator[SnapshotReader]:
    """A reader of this test's snapshots topic."""
    async with open_snapshot_reader(kafka_settings) as reader:
        yield reader


@contextlib.asynccontextmanager
async def running_poller(settings: Settings, **options: Any) -> AsyncIterator[asyncio.Task[None]]:
    """A poller running in this event loop until the block ends (then stopped gracefully)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_poller(settings, stop, session_timeout_ms=6000, **options))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def store_orders(engine: AsyncEngine, reader: SnapshotReader, token_id: uuid.UUID) -> int:
    """Write orders rows from the consumed snapshots, as the processor would (latest revision per order)."""
    rows = [e for e in reader.latest.values() if e.token_id == token_id and e.gone is None]
    async with engine.begin() as conn:
        for e in rows:
            await conn.exec_driver_sql(
                "INSERT INTO orders (token_id, user_id, checkout_form_id, revision, updated_at, bought_at,"
                " order_data, source) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)"
                " ON CONFLICT (token_id, checkout_form_id) DO UPDATE SET revision = EXCLUDED.revision,"
                " updated_at = EXCLUDED.updated_at",
                (
                    e.token_id,
                    e.user_id,
                    e.checkout_form_id,
                    e.revision,
                    e.updated_at,
                    e.bought_at,
                    e.checkout_form,
                    e.source,
                ),
            )
    return len(rows)


def sessions_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory on the test engine."""
    return async_sessionmaker(engine, expire_on_commit=False)


def parse(text: bytes) -> Any:
    """orjson.loads, typed loosely."""
    return orjson.loads(text)


@pytest.fixture
def free_ports() -> Iterator[Callable[[], int]]:
    """A free-port factory."""
    yield free_port
