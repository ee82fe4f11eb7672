"""The worker app's consumer, built but never started: its hand-over and acks are called directly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

from core.settings import KafkaSettings, ProcessorSettings, Settings
from processors.app import create_app


def worker_app(app_id: str) -> faust.App:
    """The worker's Faust app, pointed at a port nothing listens on (nothing here connects)."""
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"), processor=ProcessorSettings(app_id=app_id)
    )
    return create_app(settings)


def unstarted_consumer(app: faust.App, deliver: Callable[[Any], Awaitable[Any]]) -> Any:
    """The app's consumer, delivering to `deliver` instead of the agents' conductor.

    mode gives the consumer's fetch thread an event loop of its own at construction; the thread never
    starts here, so that loop is closed at once instead of being left to the garbage collector (mode's
    `ServiceThread.thread_loop`, reached through Faust's `Consumer._thread`: test code only)."""
    consumer: Any = app.transport.create_consumer(
        callback=deliver, on_partitions_revoked=None, on_partitions_assigned=None
    )
    consumer._thread.thread_loop.close()
    return consumer
