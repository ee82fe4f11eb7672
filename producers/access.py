"""Calls to Allegro on behalf of one token: its access token, one serialised refresh, 429 pauses.

A 401 leads to exactly one refresh and one retry. Refresh tokens are single-use, so a refresh is
serialised per token (an asyncio lock, and the row locked in PostgreSQL) and the new pair is committed
before the new access token is used: a crash right after the refresh still leaves a usable pair stored.
A 429 pauses the whole client id (Allegro blocks all of it), then the call is retried. Which error is
which is `allegro_api.retrying.classify`'s decision, shared with the client and the token worker. A row
with no refresh token cannot be refreshed: NeedsReauth, so the account ends as `needs_reauth` instead
of failing the same way every cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_none,
    wait_random,
)

from allegro_api import AllegroAuth, AllegroClient, AllegroError, NeedsReauth, RateGovernor, RateLimited
from allegro_api.retrying import Disposition, classify, retried_after_failure
from core.crypto import KeyRing
from db.queries import token_sync

T = TypeVar("T")
log = logging.getLogger(__name__)

# How many 429s in a row one call waits out before the run gives up until the next cycle.
MAX_RATE_LIMIT_RETRIES = 5
REFRESH_AHEAD = timedelta(seconds=60)
# Seconds of spread added to a 429's pause, so processes sharing the client id do not resume in lockstep.
_SPREAD = wait_random(0.0, 5.0)


@dataclass
class RequestCounter:
    """Requests made inside one sync run (the client's observer counts into the run's task context)."""

    count: int = 0


current_request_counter: ContextVar[RequestCounter | None] = ContextVar(
    "poller_request_counter", default=None
)


def count_request() -> None:
    """Count one Allegro request against the sync run of the calling task, if any."""
    counter = current_request_counter.get()
    if counter is not None:
        counter.count += 1


@dataclass(frozen=True)
class AllegroAccess:
    """Everything shared by the process for talking to Allegro."""

    client: AllegroClient
    auth: AllegroAuth
    governor: RateGovernor
    keyring: KeyRing
    sessions: async_sessionmaker[AsyncSession]


@dataclass
class TokenAccess:
    """One token's view of Allegro: its current access token and the refresh that renews it."""

    access: AllegroAccess
    token_id: UUID
    access_token: str
    access_expires_at: datetime | None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def call(self, operation: Callable[[str], Awaitable[T]]) -> T:
        """Run `operation(access_token)`; refresh once on 401, wait out up to `MAX_RATE_LIMIT_RETRIES`
        429s in a row (each pauses the whole client id); any other error, or one 429 more, is raised."""
        refreshed = False

        async def attempt() -> T:
            nonlocal refreshed
            token = self.access_token
            try:
                return await operation(token)
            except AllegroError as exc:
                if classify(exc) is not Disposition.REFRESH or refreshed:
                    raise
            refreshed = True
            await self.refresh(failed_token=token)
            return await operation(self.access_token)

        def pause_client_id(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            if not isinstance(exc, RateLimited):
                return
            pause = exc.retry_after if exc.retry_after is not None else exc.pause_seconds + _SPREAD(state)
            log.warning("allegro answered 429: pausing the client id for %.1fs", pause)
            self.access.governor.pause_for(pause)

        def retrying() -> AsyncRetrying:
            # No sleep here: the governor holds every call of the client id (this one's next attempt too).
            return AsyncRetrying(
                retry=retry_if_exception_type(RateLimited),
                stop=stop_after_attempt(MAX_RATE_LIMIT_RETRIES + 1),
                wait=wait_none(),
                before_sleep=pause_client_id,
                reraise=True,
            )

        return await retried_after_failure(retrying, attempt)

    async def refresh_if_expiring(self, now: datetime) -> None:
        """Refresh ahead of expiry, so long runs do not meet a 401 halfway."""
        if self.access_expires_at is not None and self.access_expires_at - REFRESH_AHEAD <= now:
            await self.refresh(failed_token=self.access_token)

    async def refresh(self, *, failed_token: str) -> None:
        """Swap the stored refresh token for a new pair, commit it, then use it (one at a time per token)."""
        async with self._lock:
            if self.access_token != failed_token:
                return  # another call of this token refreshed while we waited
            async with self.access.sessions() as session, session.begin():
                state = await token_sync.load_token(session, self.token_id, for_update=True)
                if state is None or state.refresh_token is None or state.access_token is None:
                    # Waiting will not bring one back: only a new link does.
                    raise NeedsReauth("no refresh token stored")
                stored_access = self.access.keyring.open(state.access_token)
                if stored_access != failed_token:
                    # The row already holds a newer pair (another run refreshed it): use that one.
                    self.access_token, self.access_expires_at = stored_access, state.access_expires_at
                    return
                pair = await self.access.auth.refresh(self.access.keyring.open(state.refresh_token))
                issued_at = datetime.now(UTC)
                await token_sync.save_token_pair(
                    session,
                    self.token_id,
                    access_token=self.access.keyring.seal(pair.access_token),
                    refresh_token=self.access.keyring.seal(pair.refresh_token),
                    access_expires_at=pair.access_expires_at(issued_at),
                    scope=pair.scope,
                )
            # Committed: only now does the new access token go into use.
            self.access_token = pair.access_token
            self.access_expires_at = pair.access_expires_at(issued_at)
            log.info("access token refreshed")
