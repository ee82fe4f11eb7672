"""Shared fixtures: real PostgreSQL and real Kafka, found in this order:

1. `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` from the environment (the launcher's `scripts/stack env`);
2. containers through testcontainers when a Docker engine answers;
3. otherwise the session stops with a message that says how to start the stack.

Tests run against a separate `<name>_test` database, dropped and migrated once per session. Each test
gets isolation from a rolled-back transaction (`session`) or, where separate processes must see the
data, from fresh random token ids and its own Kafka topic names (`kafka_settings`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from core.settings import KafkaSettings
from core.topics import ensure_topics, topic_specs
from db.engine import async_url
from db.migrate import create_database, downgrade, sibling_database_url, upgrade

# The suite runs on the development secrets; production refuses them (core.settings).
os.environ.setdefault("ENVIRONMENT", "development")

# Seconds a test marked `slow` may take (the others: `timeout` in pyproject.toml). The chaos test took
# 73-89 s on a quiet machine; its own waits give up long before this on a loaded one.
SLOW_TEST_TIMEOUT = 1200

HOW_TO_START = (
    'No PostgreSQL/Kafka for the tests: run `scripts/stack up && eval "$(scripts/stack env)"` '
    "(or set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, or start a Docker engine for testcontainers)."
)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine": fall through to the next option
        return False
    return True


@pytest.fixture(scope="session")
def _services() -> Iterator[tuple[str, str]]:
    """(database URL, Kafka bootstrap servers) of real servers for the whole session."""
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    with ExitStack() as stack:
        if not (database_url and bootstrap) and _docker_answers():
            from testcontainers.kafka import KafkaContainer
            from testcontainers.postgres import PostgresContainer

            if not database_url:
                pg = stack.enter_context(PostgresContainer("postgres:16-alpine", driver="asyncpg"))
                database_url = pg.get_connection_url()
            if not bootstrap:
                kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
                bootstrap = kafka.get_bootstrap_server()
        if not (database_url and bootstrap):
            pytest.exit(HOW_TO_START, returncode=2)
        yield async_url(database_url), bootstrap


@pytest.fixture(scope="session")
def database_url(_services: tuple[str, str]) -> str:
    """A migrated, empty test database for this session."""
    url = sibling_database_url(_services[0], "test")
    create_database(url)
    downgrade(url, "base")
    upgrade(url, "head")
    return url


@pytest.fixture(scope="session")
def kafka_bootstrap(_services: tuple[str, str]) -> str:
    """Bootstrap servers of the real broker."""
    return _services[1]


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """One engine for the session."""
    engine = create_async_engine(database_url, pool_size=5, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str) -> AsyncIterator[KafkaSettings]:
    """Kafka settings with topic names of this test's own, created with the contract's configs, and
    deleted afterwards so a long-lived development broker does not collect them."""
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap).prefixed(
        f"t{uuid.uuid4().hex[:10]}", partitions=2
    )
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, specs, 1)
        yield settings
        await admin.delete_topics([spec.name for spec in specs])
    finally:
        await admin.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give tests marked `slow` the longer timeout, unless one names its own."""
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT))
