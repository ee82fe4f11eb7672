"""The Faust app factory: topics, the two agents and the resources service, from settings.

Nothing is built at import time: `python -m processors` calls `create_app(get_settings())`.

Delivery (at-least-once, effectively-once results):
- agents read batches with `stream.take_events(n, within=t)`; Faust acks a batch's events only when the
  agent asks for the next batch, i.e. after `store_*` returned, and commits only acked offsets;
- `store_*` never raises (it retries, holding the batch and the partition), because an exception that
  escapes an agent acks its messages and loses them;
- a stop (or a rebalance cancelling the agent) in the middle of a batch must not ack it either:
  `take_events` acks its buffered events in a `finally`, so we mark them acknowledged-already first,
  which turns that ack into a no-op; the batch is redelivered, and the handler is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust

from core.settings import Settings
from processors.messages import RawMessage
from processors.metrics import SinkMetrics
from processors.resources import SinkResources


def raw_message(message: Any) -> RawMessage:
    """Our broker-neutral view of a Faust message (key and value stay bytes)."""
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((name, bytes(value or b"")) for name, value in headers),
        timestamp=message.timestamp,
    )


def _withhold_acks(events: Sequence[Any]) -> None:
    # Consumer.ack() skips a message flagged as acked, so its offset is never marked for commit.
    for event in events:
        event.message.acked = True


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app with its topics, agents and resources service."""
    kafka, processor = settings.kafka, settings.processor
    app = faust.App(
        processor.app_id,
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        broker_client_id=f"{kafka.client_id}-processor",
        datadir=processor.data_dir,
        autodiscover=False,
        # Our topics are created by core.topics with the contract's configs; Faust must not declare any,
        # and this app has no tables, so it needs no leader topic either.
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=4 * 1024 * 1024,
        stream_buffer_maxsize=max(4096, 2 * processor.batch_size),
        web_enabled=False,
        # On stop and rebalance Faust would wait until every fetched message is acked; a batch left
        # unacked on purpose (see `_withhold_acks`) kept that wait going forever. Redelivery is harmless:
        # the handler is idempotent.
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    resources = SinkResources(settings, SinkMetrics())
    resources.stopping = lambda: app.should_stop
    # App.service takes an instance as well as a class (App._prepare_subservice); ours carries settings.
    app.service(resources)  # type: ignore[arg-type]
    snapshots = app.topic(kafka.snapshots_topic, key_serializer="raw", value_serializer="raw")
    sync_runs = app.topic(kafka.sync_runs_topic, key_serializer="raw", value_serializer="raw")

    async def batches(stream: Any) -> AsyncIterator[list[Any]]:
        await resources.ready.wait()
        async for events in stream.take_events(processor.batch_size, within=processor.batch_within_seconds):
            yield list(events)

    @app.agent(snapshots, name="store-snapshots")
    async def store_snapshots(stream: Any) -> None:
        async for events in batches(stream):
            try:
                await resources.store_snapshots([raw_message(e.message) for e in events])
            except asyncio.CancelledError:
                _withhold_acks(events)
                raise

    @app.agent(sync_runs, name="store-sync-runs")
    async def store_sync_runs(stream: Any) -> None:
        async for events in batches(stream):
            try:
                await resources.store_sync_runs([raw_message(e.message) for e in events])
            except asyncio.CancelledError:
                _withhold_acks(events)
                raise

    return app
