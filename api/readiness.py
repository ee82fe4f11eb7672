"""Readiness probes: PostgreSQL answers `SELECT 1`, Kafka answers a metadata request."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)


class KafkaProbe:
    """One admin client, started on first use and rebuilt after a failure, asking for cluster metadata."""

    def __init__(self, bootstrap_servers: str, client_id: str, *, timeout_seconds: float) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._timeout = timeout_seconds
        self._admin: AIOKafkaAdminClient | None = None
        # Concurrent probes share one client: only one may build or rebuild it at a time.
        self._lock = asyncio.Lock()

    def _new_admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap_servers,
            client_id=f"{self._client_id}-api-probe",
            request_timeout_ms=int(self._timeout * 1000),
        )

    async def check(self) -> str | None:
        """None when a broker answered, else why not."""
        try:
            async with self._lock, asyncio.timeout(self._timeout):
                if self._admin is None:
                    admin = self._new_admin()
                    self._admin = admin
                    await admin.start()
                await self._admin.describe_cluster()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is reported
            await self._discard()
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None

    async def close(self) -> None:
        """Close the admin client, if any."""
        async with self._lock:
            await self._discard()

    async def _discard(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except Exception:
                logger.debug("closing the Kafka probe client failed", exc_info=True)


async def check_database(engine: AsyncEngine, *, timeout_seconds: float) -> str | None:
    """None when PostgreSQL answered `SELECT 1`, else why not."""
    try:
        async with asyncio.timeout(timeout_seconds), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None
