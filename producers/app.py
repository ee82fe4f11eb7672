"""The poller's composition root: engine, HTTP client, Allegro client, Kafka producer and consumer."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from httpx_aiohttp import AiohttpTransport
from prometheus_client import start_http_server

from allegro_api import AllegroAuth, AllegroClient
from allegro_api.http import allegro_http_client
from core.crypto import KeyRing
from core.logging import log_context
from core.settings import Settings
from core.waiting import StopRequested, retry_until_available
from db.engine import create_autocommit_session_factory, create_engine, create_session_factory
from producers.access import AllegroAccess, count_request
from producers.budget import SharedBudget
from producers.keys import RotationReport, rotate_keys
from producers.membership import create_membership_consumer
from producers.metrics import PollerMetrics
from producers.poller import Poller
from producers.publisher import PollerPublisher, create_poller_producer
from producers.sync import SyncContext
from producers.token_work import poller_identity

log = logging.getLogger(__name__)


def group_id_for(settings: Settings) -> str:
    """The consumer group of every poller of one Allegro client id on one tokens topic: pollers of other
    deployments (other topic names) on the same broker never join it, even with the same client id."""
    return f"{settings.allegro.client_id}-pollers-{settings.kafka.tokens_topic}"


@asynccontextmanager
async def sync_context(
    settings: Settings,
    metrics: PollerMetrics,
    *,
    kafka_request_timeout_ms: int = 30_000,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[SyncContext]:
    """Everything the token work shares, opened and closed together (the producer is flushed on exit).

    Waits for Kafka to answer before it yields; raises StopRequested when `stop` is set meanwhile."""
    engine = create_engine(settings.database)
    allegro = settings.allegro
    # As many connections as requests in flight at once: journal polls, and walks with their concurrent
    # fetches.
    poller = settings.poller
    in_flight = poller.max_concurrent_tokens + 4 * poller.max_concurrent_walks
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    # httpx's API over aiohttp's connections: a quiet poll is one request, and httpcore's pool spent
    # about three times the CPU per request (docs/PERFORMANCE.md).
    http = allegro_http_client(
        timeout_seconds=allegro.timeout_seconds, transport=AiohttpTransport(limits=limits)
    )
    producer = create_poller_producer(settings.kafka, request_timeout_ms=kafka_request_timeout_ms)
    publisher = PollerPublisher(
        producer,
        settings.kafka,
        renew=lambda: create_poller_producer(settings.kafka, request_timeout_ms=kafka_request_timeout_ms),
    )
    governor = SharedBudget(allegro.requests_per_minute)

    def observe(endpoint: str, outcome: str, seconds: float) -> None:
        count_request()
        metrics.observe_response(endpoint, outcome, seconds)

    try:
        await retry_until_available(
            producer.start,
            what="starting the Kafka producer",
            stop=stop,
            on_failure=lambda _: metrics.dependency_up.labels(dependency="kafka").set(0),
        )
        access = AllegroAccess(
            client=AllegroClient(
                http,
                api_url=allegro.api_url,
                user_agent=allegro.user_agent,
                max_retries=allegro.max_retries,
                governor=governor,
                observer=observe,
            ),
            auth=AllegroAuth(
                http,
                auth_url=allegro.auth_url,
                client_id=allegro.client_id,
                client_secret=allegro.client_secret.get_secret_value(),
            ),
            governor=governor,
            keyring=KeyRing.parse(settings.crypto.keys.get_secret_value()),
            sessions=create_session_factory(engine),
        )
        metrics.budget_limit.set(governor.budget)
        yield SyncContext(
            access,
            publisher,
            settings.poller,
            metrics,
            autocommit=create_autocommit_session_factory(engine),
        )
    finally:
        await publisher.close()  # flushes what is still buffered
        await http.aclose()
        await engine.dispose()


async def run_poller(
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics: PollerMetrics | None = None,
    session_timeout_ms: int = 10_000,
    kafka_request_timeout_ms: int = 30_000,
) -> None:
    """Run one poller process until `stop` is set: join the group, sync owned tokens, then leave cleanly."""
    metrics = metrics or PollerMetrics.create()
    with log_context(poller=poller_identity()):
        try:
            async with sync_context(
                settings, metrics, kafka_request_timeout_ms=kafka_request_timeout_ms, stop=stop
            ) as context:
                consumer = create_membership_consumer(
                    settings.kafka, group_id_for(settings), session_timeout_ms=session_timeout_ms
                )
                await Poller(context, consumer, settings.kafka.tokens_topic).run(stop)
        except StopRequested:
            log.info("poller stopped before Kafka answered")


async def run_until_signalled(settings: Settings, *, metrics_port: int = 0) -> None:
    """The `python -m producers` service: stops gracefully on SIGTERM or SIGINT."""
    metrics = PollerMetrics.create()
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("poller starting", extra={"group": group_id_for(settings), "topic": settings.kafka.tokens_topic})
    await run_poller(settings, stop, metrics=metrics)


async def rotate_keys_command(settings: Settings) -> RotationReport:
    """Re-seal every token row's secrets with the current key (`python -m producers rotate-keys`)."""
    engine = create_engine(settings.database)
    try:
        keyring = KeyRing.parse(settings.crypto.keys.get_secret_value())
        return await rotate_keys(create_session_factory(engine), keyring)
    finally:
        await engine.dispose()
