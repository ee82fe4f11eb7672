"""Schema migrations, run programmatically (alembic's command API) by the CLI, the launcher and tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from db.engine import asyncpg_dsn

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(url: str) -> Config:
    """An alembic config pointing at this project's migrations and the given database."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`. Blocking: call it outside the event loop."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`. Blocking: call it outside the event loop."""
    command.downgrade(alembic_config(url), revision)


def sibling_database_url(url: str, suffix: str) -> str:
    """The URL of `<name>_<suffix>` on the same server (tests and benchmarks keep to their own database)."""
    base, _, name = url.rpartition("/")
    name = name.split("?")[0]
    return url if name.endswith(f"_{suffix}") else f"{base}/{name}_{suffix}"


def create_database(url: str) -> None:
    """Create the URL's database when the server does not have it. Blocking: call it outside the loop."""
    asyncio.run(_on_server(url, _create))


def drop_database(url: str) -> None:
    """Drop the URL's database if it exists (no session may be open on it). Blocking, like create_database."""
    asyncio.run(_on_server(url, _drop))


async def _on_server(url: str, action: Callable[[asyncpg.Connection, str], Awaitable[None]]) -> None:
    """Run `action(connection, database name)` on the server's `postgres` database."""
    server, _, name = asyncpg_dsn(url).rpartition("/")
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await action(conn, name)
    finally:
        await conn.close()


# A database name cannot be a query parameter; it comes from our own settings.
async def _create(conn: asyncpg.Connection, name: str) -> None:
    if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        await conn.execute(f'CREATE DATABASE "{name}"')


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    # Without FORCE: an autovacuum worker there is cancelled by the drop itself, and FORCE would need the
    # right to signal it.
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
