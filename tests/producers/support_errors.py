"""What the error-path tests read back: every sync-run record on Kafka, the sync_history rows the
processor's query makes of them, the token rows, and the REST API's answers about them."""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.app import create_app
from core.contract import SyncRunRecord, decode_sync_run
from core.logging import configure_logging
from core.settings import KafkaSettings, Settings
from core.topics import partition_ids
from db.engine import asyncpg_dsn
from db.queries.sync_history import upsert_sync_runs
from tests.producers.conftest import Sim

API_KEY = "error-paths-key"


async def read_sync_run_values(kafka: KafkaSettings) -> list[bytes]:
    """Every raw value on the test's sync-runs topic so far."""
    topic = kafka.sync_runs_topic
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        partitions = [TopicPartition(topic, p) for p in await partition_ids(kafka.bootstrap_servers, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(m.value for messages in batches.values() for m in messages if m.value)
    finally:
        await consumer.stop()
    return values


async def store_sync_runs(database_url: str, values: list[bytes]) -> list[SyncRunRecord]:
    """Write the records into sync_history with the processor's own upsert; returns them decoded."""
    records = [decode_sync_run(value) for value in values]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await upsert_sync_runs(conn, records)
    finally:
        await conn.close()
    return records


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The REST API over the poller's database, in process."""
    api_settings = Settings.model_validate(
        {
            "database": {"url": settings.database.url, "pool_size": 2},
            "kafka": settings.kafka.model_dump(),
            "allegro": {"auth_url": settings.allegro.auth_url, "api_url": settings.allegro.api_url},
            "api": {"keys": API_KEY, "cursor_secret": "error-paths-cursor"},
        }
    )
    app = create_app(api_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as client,
    ):
        yield client


async def api_answers(settings: Settings, user_ids: list[str], token_ids: list[uuid.UUID]) -> str:
    """The raw text of every token and sync-history answer of these users."""
    texts: list[str] = []
    async with api_client(settings) as client:
        for user_id in user_ids:
            for path in ("tokens", "sync-history?limit=200"):
                response = await client.get(f"/v1/users/{user_id}/{path}")
                assert response.status_code == 200, response.text
                texts.append(response.text)
            for token_id in token_ids:
                response = await client.get(f"/v1/users/{user_id}/tokens/{token_id}")
                texts.append(response.text)
    return "\n".join(texts)


def simulator_secrets(sim: Sim) -> set[str]:
    """Every access token, refresh token and device code the simulator ever issued, and its secret."""
    oauth = sim.app.state.sim.oauth
    issued: set[str] = {*oauth.access, *oauth.refresh, *oauth.devices}
    return issued | {sim.app.state.sim.config.client_secret}


@contextlib.contextmanager
def service_logs() -> Iterator[io.StringIO]:
    """The processes' own log configuration (JSON lines, secret filter) writing into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", json_logs=True, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def leaked(texts: dict[str, str], secrets: set[str]) -> dict[str, list[str]]:
    """For each place, the secrets (abbreviated) found in its text."""
    found: dict[str, list[str]] = {}
    for place, text in texts.items():
        hits = [f"{s[:12]}..." for s in secrets if s in text]
        if hits:
            found[place] = hits
    return found


def as_dicts(records: list[SyncRunRecord]) -> list[dict[str, Any]]:
    """Records as plain dicts, for assertions."""
    return [record.model_dump() for record in records]
