"""What the app owns: built once per app (keys, codecs, metrics) or per lifespan (engine, clients)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from allegro_api.auth import AllegroAuth
from allegro_api.http import allegro_http_client
from api.cursors import CursorCodec
from api.metrics import ApiMetrics
from api.readiness import KafkaProbe
from api.security import ApiKeys
from core.crypto import KeyRing
from core.settings import Settings
from db.engine import asyncpg_dsn, create_engine, create_session_factory

READINESS_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class AppConfig:
    """Built by the app factory from settings; fails fast on a bad key list."""

    settings: Settings
    api_keys: ApiKeys
    cursors: CursorCodec
    keyring: KeyRing
    metrics: ApiMetrics

    @classmethod
    def from_settings(cls, settings: Settings) -> AppConfig:
        """Parse keys and secrets once."""
        return cls(
            settings=settings,
            api_keys=ApiKeys.parse(settings.api.keys.get_secret_value()),
            cursors=CursorCodec(settings.api.cursor_secret.get_secret_value().encode()),
            keyring=KeyRing.parse(settings.crypto.keys.get_secret_value()),
            metrics=ApiMetrics.create(),
        )


@dataclass(frozen=True)
class Resources:
    """Connections of a running app, opened by the lifespan and closed with it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Plain asyncpg for the hottest single-row reads (see db.queries.orders.get_order).
    reads: asyncpg.Pool
    allegro_auth: AllegroAuth
    kafka: KafkaProbe


async def _keep_connection_state(_: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release: these reads never LISTEN, lock or SET anything."""


@asynccontextmanager
async def open_resources(
    settings: Settings, *, allegro_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Resources]:
    """Open the engine, the shared Allegro HTTP client and the Kafka probe; close them all on exit."""
    engine = create_engine(settings.database)
    # min_size=0: the app starts (and /readyz reports) even while PostgreSQL is down.
    reads = await asyncpg.create_pool(
        asyncpg_dsn(settings.database.url.get_secret_value()),
        min_size=0,
        max_size=settings.api.read_pool_size,
        reset=_keep_connection_state,
    )
    http = allegro_http_client(
        timeout_seconds=settings.allegro.timeout_seconds,
        transport=allegro_transport,
        headers={"User-Agent": settings.allegro.user_agent},
    )
    kafka = KafkaProbe(
        settings.kafka.bootstrap_servers, settings.kafka.client_id, timeout_seconds=READINESS_TIMEOUT_SECONDS
    )
    try:
        yield Resources(
            engine=engine,
            sessions=create_session_factory(engine),
            reads=reads,
            allegro_auth=AllegroAuth(
                http,
                auth_url=settings.allegro.auth_url,
                client_id=settings.allegro.client_id,
                client_secret=settings.allegro.client_secret.get_secret_value(),
            ),
            kafka=kafka,
        )
    finally:
        await kafka.close()
        await http.aclose()
        await reads.close()
        await engine.dispose()
