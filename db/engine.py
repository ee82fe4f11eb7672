"""Engine and session factories; built only by a process's composition root."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.settings import DatabaseSettings


def async_url(url: str) -> str:
    """Accept the conventional `postgresql://` form and pin the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def asyncpg_dsn(url: str) -> str:
    """The same URL for plain asyncpg (`postgresql://`), used by bulk paths and benchmarks."""
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An asyncpg-backed engine with a bounded pool."""
    return create_async_engine(
        async_url(settings.url.get_secret_value()),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=settings.pool_pre_ping,
        echo=settings.echo,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (no lazy reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def create_autocommit_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same pool whose every statement commits on its own.

    For reads and one-statement writes on hot paths: the asyncpg dialect wraps every checkout's pre-ping
    and every session in BEGIN ... ROLLBACK/COMMIT, so one query costs six round trips in a normal session
    and two here. Never for work that must be atomic across statements.
    """
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
