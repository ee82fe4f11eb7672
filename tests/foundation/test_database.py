"""The schema on the real PostgreSQL server: migrations both ways, constraints that keep data whole."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from core.settings import DatabaseSettings
from db.engine import (
    asyncpg_dsn,
    create_autocommit_session_factory,
    create_engine,
    create_session_factory,
)
from db.migrate import downgrade, upgrade
from db.models import Base


async def _recreate(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def scratch_database(database_url: str) -> str:
    base = database_url.rpartition("/")[0]
    name = "backup_migrations_test"
    asyncio.run(_recreate(f"{asyncpg_dsn(base)}/postgres", name))
    return f"{base}/{name}"


def test_migrations_upgrade_downgrade_and_upgrade_again(scratch_database: str) -> None:
    dsn = asyncpg_dsn(scratch_database)
    tables = {"user_tokens", "orders", "order_revisions", "sync_history"}
    upgrade(scratch_database)
    assert tables <= asyncio.run(_tables(dsn))
    downgrade(scratch_database)
    assert not tables & asyncio.run(_tables(dsn))
    upgrade(scratch_database)
    assert tables <= asyncio.run(_tables(dsn))


def _schema_diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(_schema_diff)
    await engine.dispose()
    assert diff == []


async def test_stored_forms_are_compressed_with_lz4(database_url: str) -> None:
    # pglz compression had been the upsert's largest single cost (migration 0005).
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        methods = await conn.fetch(
            """SELECT attrelid::regclass::text AS table_name, attcompression::text AS method FROM pg_attribute
            WHERE attname = 'order_data' AND attrelid IN ('orders'::regclass, 'order_revisions'::regclass)"""
        )
    finally:
        await conn.close()
    assert {(m["table_name"], m["method"]) for m in methods} == {("orders", "l"), ("order_revisions", "l")}


async def _insert_order(session: AsyncSession, token_id: uuid.UUID, form_id: str, revision: str) -> None:
    await session.execute(
        text(
            "INSERT INTO orders (token_id, user_id, checkout_form_id, revision, order_data, source)"
            " VALUES (:t, 'user-1', :f, :r, '{}'::jsonb, 'journal')"
        ),
        {"t": token_id, "f": form_id, "r": revision},
    )


async def test_duplicate_order_row_is_rejected(session: AsyncSession) -> None:
    token_id = uuid.uuid4()
    await _insert_order(session, token_id, "d4096850-303d-11f0-9468-6d34c41cf924", "aaaaaaaa")
    with pytest.raises(IntegrityError, match="uq_orders_token_id_checkout_form_id"):
        async with session.begin_nested():
            await _insert_order(session, token_id, "d4096850-303d-11f0-9468-6d34c41cf924", "bbbbbbbb")
    # The same form under another token is another order.
    await _insert_order(session, uuid.uuid4(), "d4096850-303d-11f0-9468-6d34c41cf924", "aaaaaaaa")


async def test_duplicate_revision_row_is_rejected(session: AsyncSession) -> None:
    statement = text(
        "INSERT INTO order_revisions (token_id, checkout_form_id, revision, order_data, captured_at, source)"
        " VALUES (:t, 'f-1', 'aaaaaaaa', '{}'::jsonb, now(), 'journal')"
    )
    token_id = uuid.uuid4()
    await session.execute(statement, {"t": token_id})
    with pytest.raises(IntegrityError, match="uq_order_revisions"):
        async with session.begin_nested():
            await session.execute(statement, {"t": token_id})


async def test_second_active_link_of_the_same_seller_is_rejected(session: AsyncSession) -> None:
    statement = text(
        "INSERT INTO user_tokens (id, user_id, seller_id, status) VALUES (:id, 'user-1', '42', :status)"
    )
    await session.execute(statement, {"id": uuid.uuid4(), "status": "active"})
    await session.execute(statement, {"id": uuid.uuid4(), "status": "unlinked"})
    with pytest.raises(IntegrityError, match="uq_user_tokens_active_user_seller"):
        async with session.begin_nested():
            await session.execute(statement, {"id": uuid.uuid4(), "status": "active"})


async def test_unknown_token_status_is_rejected(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="ck_user_tokens_status"):
        async with session.begin_nested():
            await session.execute(
                text("INSERT INTO user_tokens (id, user_id, status) VALUES (:id, 'u', 'sleeping')"),
                {"id": uuid.uuid4()},
            )


async def test_autocommit_sessions_commit_each_statement_and_still_ping_the_pooled_connection(
    database_url: str,
) -> None:
    engine = create_engine(DatabaseSettings(url=database_url, pool_size=1))
    atomic, autocommit = create_session_factory(engine), create_autocommit_session_factory(engine)
    xid = text("SELECT pg_current_xact_id()::text")
    try:
        async with atomic() as session, session.begin():
            first, second = [(await session.execute(xid)).scalar_one() for _ in range(2)]
        assert first == second  # one transaction
        async with autocommit() as session:
            first, second = [(await session.execute(xid)).scalar_one() for _ in range(2)]
            backend = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert first != second  # each statement its own transaction

        # The pooled connection dies under us (a server restart would do the same): the pre-ping
        # notices at the next checkout and the session gets a fresh connection.
        killer = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", backend)
        finally:
            await killer.close()
        async with autocommit() as session:
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() != backend
    finally:
        await engine.dispose()
