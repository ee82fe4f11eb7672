"""Waiting out an outage: retry an action with backoff until a dependency answers or the process stops.

The long-running services must outlive PostgreSQL and Kafka going away, at start-up as much as later: an
action that fails with an outage (`core.outages.is_outage`, or the caller's own test) is logged and
retried after an exponential, fully jittered delay (tenacity). Anything else is a defect and propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never, wait_random_exponential

from core.outages import is_outage

log = logging.getLogger(__name__)

T = TypeVar("T")

# Outages shorter than the cap are noticed within seconds of their end; a longer cap saves little.
BACKOFF_CAP_SECONDS = 15.0
BACKOFF_BASE_SECONDS = 0.5

# Full jitter: each wait is uniform in [0, min(15, 0.5 * 2**n)] seconds.
OUTAGE_BACKOFF = wait_random_exponential(multiplier=BACKOFF_BASE_SECONDS, max=BACKOFF_CAP_SECONDS)


class StopRequested(Exception):
    """The process was asked to stop while it waited for a dependency."""


def backoff_delay(failures: int) -> float:
    """The wait after `failures` failures in a row, drawn from `OUTAGE_BACKOFF`: uniform in
    [0, min(15, 0.5 * 2**failures)] seconds. For loops that pace themselves (a scheduler's next scan)
    rather than retry one action."""
    state = RetryCallState(AsyncRetrying(wait=OUTAGE_BACKOFF), None, (), {})
    state.attempt_number = max(0, failures) + 1
    return OUTAGE_BACKOFF(state)


async def retry_until_available(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    transient: Callable[[BaseException], bool] = is_outage,
    stop: asyncio.Event | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Await `action()` until it succeeds; raises StopRequested once `stop` is set while waiting.

    `transient` tells the failures worth waiting out (the others propagate at once); `on_failure` sees
    each of them (to mark a dependency down in the metrics, say)."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:
            return
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
        if on_failure is not None:
            on_failure(exc)

    async def pause(delay: float) -> None:
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        if stop.is_set():
            raise StopRequested(what)

    retrying = AsyncRetrying(
        retry=retry_if_exception(transient),
        stop=stop_never,
        wait=OUTAGE_BACKOFF,
        sleep=pause,
        before_sleep=before_sleep,
        reraise=True,
    )

    async def call() -> T:
        return await action()

    return await retrying(call)
