"""Retrying a batch until it is done: the agent loop's guarantee that nothing escapes and nothing is skipped.

A Faust agent whose body raises has its buffered messages acked, i.e. lost. So the agents call their
handler through `run_until_done`, which never raises (except on cancellation, when the worker stops and
the batch stays unacked): it keeps the batch, and thereby the partition, until the handler succeeds.

- transient errors (PostgreSQL unreachable or restarting, the broker timing out) are retried forever
  with exponential backoff and full jitter, logged as warnings;
- any other error is a defect or an unforeseen state: it is retried the same way but logged as an error
  with its traceback, because skipping the batch would lose orders. Rows PostgreSQL rejects for their
  data never get here: the handler dead-letters them itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError

from processors.handler import StoredStateChanged

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # connection refused / reset, including ConnectionRefusedError
    TimeoutError,
    asyncpg.InterfaceError,  # the connection went away under us
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError and friends (class 08)
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    KafkaError,  # produce timeouts, leader changes, broker restarts
    StoredStateChanged,  # another writer (a worker losing its partitions) stored an order meanwhile
)


def is_transient(exc: BaseException) -> bool:
    """Whether waiting and trying again is expected to succeed."""
    return isinstance(exc, TRANSIENT_ERRORS)


def backoff_delay(attempt: int, *, base: float = 0.2, cap: float = 10.0) -> float:
    """Full-jitter exponential backoff: a random delay up to base * 2**attempt, capped."""
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - jitter, not a secret


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
    attempt = 0
    while True:
        try:
            return await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nothing may escape an agent; see the module docstring
            delay = backoff_delay(attempt)
            if is_transient(exc):
                log.warning("%s failed (%s: %s), retrying in %.2fs", what, type(exc).__name__, exc, delay)
            else:
                log.exception("%s failed unexpectedly, holding the batch; retrying in %.2fs", what, delay)
            if on_retry is not None:
                on_retry(exc)
            attempt = min(attempt + 1, 16)
            if not stopping():
                await sleep(delay)
            if stopping():
                raise asyncio.CancelledError(f"{what}: stopping; left for redelivery") from exc
