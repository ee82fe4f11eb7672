"""Waiting out an outage: retry an action with backoff until a dependency answers or the process stops.

The long-running services must outlive PostgreSQL and Kafka going away, at start-up as much as later: an
action that fails with one of the given (connection-level) errors is logged and retried after an
exponential, fully jittered delay. Anything else is a defect and propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a broker or a database that is away raises: refused or reset connections (OSError, which covers
# TimeoutError too) and aiokafka's own errors (no broker, request timed out, coordinator unknown).
KAFKA_UNAVAILABLE: tuple[type[BaseException], ...] = (OSError, KafkaError)

# Outages shorter than the cap are noticed within seconds of their end; a longer cap saves little.
BACKOFF_CAP_SECONDS = 15.0


class StopRequested(Exception):
    """The process was asked to stop while it waited for a dependency."""


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Full-jitter exponential backoff in seconds: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 16)))  # noqa: S311 - jitter, not a secret


async def retry_until_available(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    errors: tuple[type[BaseException], ...] = KAFKA_UNAVAILABLE,
    stop: asyncio.Event | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Await `action()` until it succeeds; raises StopRequested once `stop` is set while waiting.

    `errors` are the failures worth waiting out; `on_failure` sees each of them (to mark a dependency
    down in the metrics, say)."""
    attempt = 0
    while True:
        try:
            return await action()
        except errors as exc:
            delay = backoff_delay(attempt)
            attempt += 1
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
            if on_failure is not None:
                on_failure(exc)
        if stop is None:
            await asyncio.sleep(delay)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            raise StopRequested(what)
