"""What to do about an Allegro error, decided once for the client and the poller alike.

- `TRANSIENT` (Unavailable: 5xx, 408, HTML gateway pages, timeouts, connection errors): the client
  retries the call with backoff; if that is not enough, the poller's run fails and the next cycle tries.
- `RATE_LIMITED` (429): the whole client id pauses, then the call is made again.
- `REFRESH` (401 on `/order/*`): one refresh of the token, then the call is made again.
- `REAUTH` (NeedsReauth, InvalidGrant): the account becomes `needs_reauth`; its work stops.
- `ACCESS_DENIED` (403): the account becomes `access_denied` and is tried again at growing intervals;
  the first run that works makes it `active` again.
- `FAILED` (400/404/406/422, unexpected bodies, our client credentials): the run fails, the next cycle
  tries again.

Only the first is retried inside a call, and only for idempotent requests (the client's GETs). A
refresh is never retried blindly: a refresh token is single-use (`allegro_api.auth.AllegroAuth.refresh`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from allegro_api.errors import (
    AccessTokenExpired,
    AllegroError,
    Forbidden,
    NeedsReauth,
    RateLimited,
    Unavailable,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


class Disposition(enum.Enum):
    """How an Allegro error is handled; see the module docstring."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    REFRESH = "refresh"
    REAUTH = "reauth"
    ACCESS_DENIED = "access_denied"
    FAILED = "failed"


# By class, first match wins; any other AllegroError is FAILED.
_DISPOSITIONS: tuple[tuple[type[AllegroError], Disposition], ...] = (
    (Unavailable, Disposition.TRANSIENT),
    (RateLimited, Disposition.RATE_LIMITED),
    (AccessTokenExpired, Disposition.REFRESH),
    (NeedsReauth, Disposition.REAUTH),
    (Forbidden, Disposition.ACCESS_DENIED),
)


def classify(exc: BaseException) -> Disposition | None:
    """The disposition of an Allegro error (by its class); None for anything that is not one."""
    if not isinstance(exc, AllegroError):
        return None
    for error_class, disposition in _DISPOSITIONS:
        if isinstance(exc, error_class):
            return disposition
    return Disposition.FAILED


def is_transient(exc: BaseException) -> bool:
    """Whether the same request, sent again after a pause, is expected to pass."""
    return classify(exc) is Disposition.TRANSIENT


async def retried_after_failure(retrying: Callable[[], AsyncRetrying], call: Callable[[], Awaitable[T]]) -> T:
    """Await `call()` once; only if it raises does a `retrying()` controller take over, from that
    failure on.

    The controller sees the failure as its first attempt (it decides, logs, waits and retries exactly
    as if it had made it), so the outcome is the same as `retrying()(call)`; a call that succeeds at
    once, as nearly every quiet poll's does, skips tenacity's set-up and per-attempt work
    (docs/PERFORMANCE.md)."""
    try:
        return await call()
    except Exception as exc:  # noqa: BLE001 - handed to the controller, which re-raises what it does not retry
        failure: Exception | None = exc

    async def replay_then_call() -> T:
        nonlocal failure
        if failure is not None:
            error, failure = failure, None
            raise error
        return await call()

    return await retrying()(replay_then_call)


async def retry_transient(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_retries: int,
    backoff_base: float,
    backoff_cap: float,
) -> T:
    """Await `attempt()`, retrying transient failures up to `max_retries` times with full-jitter
    exponential backoff (uniform in [0, min(cap, base * 2**n)] seconds); the last failure is raised."""

    def retrying() -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(max(0, max_retries) + 1),
            wait=wait_random_exponential(multiplier=backoff_base, max=backoff_cap),
            before_sleep=before_sleep,
            reraise=True,
        )

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        reason = error.status if isinstance(error, AllegroError) and error.status else error
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "allegro %s failed (%s), retry %d/%d in %.2fs",
            what,
            reason,
            state.attempt_number,
            max_retries,
            delay,
        )

    return await retried_after_failure(retrying, attempt)
