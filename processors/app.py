"""The Faust app factory: topics, the agents (snapshots, sync runs, order records), the resources service.

Nothing is built at import time: `python -m processors` calls `create_app(get_settings())`.

Delivery (at-least-once, effectively-once results):
- agents read batches with `stream.take_events(n, within=t)` and store them in the background while
  taking the next (`processors.pipeline`); an event is acked only after its batch is stored, and Faust
  commits only acked offsets;
- `store_*` never raises (it retries, holding the batch; see `processors.retry`), because an exception that
  escapes an agent acks its messages and loses them;
- a stop (or a rebalance cancelling the agent) leaves every event not yet stored unacked: it is
  redelivered, and the handler is idempotent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust

from core.settings import Settings
from processors.faust_internals import PlainOutputWorker, QuietMonitor, WorkerApp
from processors.messages import RawMessage
from processors.metrics import SinkMetrics
from processors.pipeline import store_while_taking
from processors.resources import SinkResources


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app with its topics, agents and resources service."""
    kafka, processor = settings.kafka, settings.processor
    app = WorkerApp(
        processor.app_id,
        monitor=QuietMonitor(),
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        broker_client_id=f"{kafka.client_id}-processor",
        datadir=processor.data_dir,
        autodiscover=False,
        # Our topics are created by core.topics with the contract's configs; Faust must not declare any,
        # and this app has no tables, so it needs no leader topic either.
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # Failover within seconds: a killed worker's partitions move once its session expires.
        broker_session_timeout=processor.session_timeout_seconds,
        broker_heartbeat_interval=processor.session_timeout_seconds / 3,
        consumer_max_fetch_size=4 * 1024 * 1024,
        # A batch: the agent keeps taking while the last batch is stored (processors.pipeline), so this
        # buffer, the batch waiting and the one being stored hold up to three batches' worth of messages.
        stream_buffer_maxsize=max(4096, processor.batch_size),
        web_enabled=False,
        Worker=PlainOutputWorker,
        # On stop and rebalance Faust would wait until every fetched message is acked; a batch left
        # unacked on purpose (see `processors.pipeline`) kept that wait going forever. Redelivery is harmless:
        # the handler is idempotent.
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    resources = SinkResources(settings, SinkMetrics())
    resources.stopping = lambda: app.should_stop
    # An instance, not a class: ours carries settings (see processors.faust_internals).
    app.service(resources)  # type: ignore[arg-type]

    async def batches(stream: Any) -> AsyncIterator[list[Any]]:
        await resources.ready.wait()
        async for events in stream.take_events(processor.batch_size, within=processor.batch_within_seconds):
            yield list(events)

    def store_agent(topic_name: str, name: str, store: Callable[[list[RawMessage]], Awaitable[None]]) -> None:
        """An agent `name` on the raw topic `topic_name` that hands its batches to `store`."""
        topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")

        async def agent(stream: Any) -> None:
            await store_while_taking(batches(stream), store, batch_size=processor.batch_size)

        app.agent(topic, name=name)(agent)

    store_agent(kafka.snapshots_topic, "store-snapshots", resources.store_snapshots)
    store_agent(kafka.sync_runs_topic, "store-sync-runs", resources.store_sync_runs)
    store_agent(kafka.records_topic, "store-order-records", resources.store_order_records)
    return app
