"""One classification of outages for every process, checked against what the real servers raise."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.outages import database_unreachable, is_outage, kafka_unavailable
from core.waiting import StopRequested, backoff_delay, retry_until_available
from processors.handler import StoredStateChanged
from processors.retry import is_transient
from tests.environments import free_port


async def test_a_refused_database_connection_is_an_outage_through_sqlalchemy_and_asyncpg() -> None:
    port = free_port()
    with pytest.raises(OSError) as raw:
        await asyncpg.connect(f"postgresql://backup:backup@127.0.0.1:{port}/none", timeout=5)
    assert database_unreachable(raw.value) and is_outage(raw.value)
    engine = create_async_engine(f"postgresql+asyncpg://backup:backup@127.0.0.1:{port}/none")
    try:
        with pytest.raises(Exception) as wrapped:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert database_unreachable(wrapped.value)


async def test_a_wrong_statement_is_not_an_outage(engine: AsyncEngine) -> None:
    with pytest.raises(sqlalchemy.exc.DBAPIError) as wrong:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table_here"))
    assert not database_unreachable(wrong.value)
    assert not is_outage(wrong.value)
    assert not is_transient(wrong.value)


async def test_a_server_shutting_down_is_an_outage(engine: AsyncEngine) -> None:
    # SQLSTATE 57P01 (admin_shutdown), as `pg_ctl stop` ends a session, raised for real by the server.
    with pytest.raises(sqlalchemy.exc.DBAPIError) as shutdown:
        async with engine.connect() as conn:
            await conn.execute(text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '57P01'; END $$"))
    assert database_unreachable(shutdown.value)


def test_kafka_errors_and_overtaken_batches() -> None:
    assert kafka_unavailable(KafkaConnectionError("no broker")) and is_outage(KafkaConnectionError())
    assert not is_outage(ValueError("a defect"))
    # Not an outage, but the batch retry waits it out all the same.
    assert not is_outage(StoredStateChanged("lost")) and is_transient(StoredStateChanged("lost"))


def test_the_pacing_backoff_grows_and_is_capped() -> None:
    for failures, ceiling in ((0, 0.5), (1, 1.0), (3, 4.0), (40, 15.0)):
        draws = [backoff_delay(failures) for _ in range(200)]
        assert all(0 <= draw <= ceiling for draw in draws), failures
    assert max(backoff_delay(40) for _ in range(200)) > 4.0


async def test_waiting_retries_outages_and_lets_defects_through() -> None:
    calls = 0

    async def twice_refused() -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionRefusedError("refused")
        return "up"

    failures: list[BaseException] = []
    assert await retry_until_available(twice_refused, what="test", on_failure=failures.append) == "up"
    assert calls == 3 and len(failures) == 2

    async def defect() -> None:
        raise ValueError("wrong")

    with pytest.raises(ValueError, match="wrong"):
        await retry_until_available(defect, what="test")


async def test_waiting_ends_when_the_process_stops() -> None:
    stop = asyncio.Event()

    async def down() -> None:
        stop.set()
        raise ConnectionRefusedError("refused")

    with pytest.raises(StopRequested):
        await asyncio.wait_for(retry_until_available(down, what="test", stop=stop), timeout=30)
