"""Retrying a batch until it is done: the agent loop's guarantee that nothing escapes and nothing is skipped.

A Faust agent whose body raises has its buffered messages acked, i.e. lost. So the agents call their
handler through `run_until_done`, which never raises (except on cancellation, when the worker stops and
the batch stays unacked): it keeps the batch until the handler succeeds. While it does, the agent takes
no other batch, so every partition of its topic this worker owns waits with it (README, "Outages").

- outages (`core.outages.is_outage`: PostgreSQL unreachable or restarting, the broker timing out) and a
  batch another writer overtook (`StoredStateChanged`) are retried forever with exponential backoff and
  full jitter (tenacity), logged as warnings;
- any other error is a defect or an unforeseen state: it is retried the same way but logged as an error
  with its traceback, because skipping the batch would lose orders. Rows PostgreSQL rejects for their
  data never get here: the handler dead-letters them itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_random_exponential,
)

from core.outages import is_outage
from processors.handler import StoredStateChanged

log = logging.getLogger(__name__)

T = TypeVar("T")

# Full jitter: each wait is uniform in [0, min(10, 0.2 * 2**n)] seconds.
BATCH_BACKOFF = wait_random_exponential(multiplier=0.2, max=10.0)


def is_transient(exc: BaseException) -> bool:
    """Whether waiting and trying again is expected to succeed (an outage, or a batch overtaken)."""
    return is_outage(exc) or isinstance(exc, StoredStateChanged)


class _Stopping(Exception):
    """The worker stops: a failed attempt is not repeated."""


async def run_until_done(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[BaseException], None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> T:
    """Await `action()` until it succeeds; never raises anything but cancellation.

    Once `stopping()` is true (the worker shuts down) a failed attempt is not repeated: it raises
    CancelledError, so the batch stays unacknowledged and is delivered again after the restart. Faust
    stops an agent by waiting for its current batch, which a permanent error would otherwise hold
    forever."""
    last: list[BaseException] = []

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:
            return
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if is_transient(exc):
            log.warning("%s failed (%s: %s), retrying in %.2fs", what, type(exc).__name__, exc, delay)
        else:
            log.error(
                "%s failed unexpectedly, holding the batch; retrying in %.2fs", what, delay, exc_info=exc
            )
        if on_retry is not None:
            on_retry(exc)
        last[:] = [exc]

    async def pause(delay: float) -> None:
        if not stopping():
            await sleep(delay)
        if stopping():
            raise _Stopping

    retrying = AsyncRetrying(
        # Exception, not BaseException: cancellation (the worker stopping) is never retried.
        retry=retry_if_exception_type(Exception),
        stop=stop_never,
        wait=BATCH_BACKOFF,
        sleep=pause,
        before_sleep=before_sleep,
        reraise=True,
    )

    async def call() -> T:
        return await action()

    try:
        return await retrying(call)
    except _Stopping:
        raise asyncio.CancelledError(f"{what}: stopping; left for redelivery") from (
            last[0] if last else None
        )
