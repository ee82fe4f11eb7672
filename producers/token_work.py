"""One token's work, one poll at a time: the scheduler (`producers.schedule`) decides when.

A `TokenWork` keeps the token's row, its decrypted access token and its sync state in memory between
polls and reads the row again only when it changed (the poller's scan says so, or the last poll wrote
it). A quiet poll (one `GET /order/events` that finds nothing) therefore reads and writes nothing in
PostgreSQL and publishes nothing; its time goes to `PollLedger`, written for many tokens at once.

What a failed poll does follows `allegro_api.retrying.classify`: a dead refresh token (or none stored)
makes the token `needs_reauth` and ends the work; a 403 makes it `access_denied` and the next poll
waits a growing interval (`POLLER__ACCESS_DENIED_BACKOFF_SECONDS`, doubling per refusal up to
`..._MAX_SECONDS`); the first poll that works makes it `active` again. Anything else transient is
logged, recorded on the run, and tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from allegro_api import AllegroError
from allegro_api.retrying import Disposition, classify
from core.crypto import CryptoError
from core.logging import log_context
from core.settings import PollerSettings
from db.queries import run_ends, token_sync
from db.queries.token_polls import Poll
from db.queries.token_sync import TokenState
from producers.access import TokenAccess
from producers.sync import SyncContext, TokenSync, cursor_expired
from producers.windows import IncompleteWalk

log = logging.getLogger(__name__)

# Failures a poll may meet that the next one may well not: logged and recorded, then retried. Which
# Allegro errors change the token's state instead is `classify`'s decision (see `TokenWork.poll`). A walk
# that could not account for a window's forms is one too: its position stays before that window.
TRANSIENT = (AllegroError, KafkaError, SQLAlchemyError, OSError, asyncio.TimeoutError, IncompleteWalk)
NO_ACCESS_TOKEN = "no access token stored"  # noqa: S105 - an error text, not a secret
ABANDONED = "abandoned: its poller stopped or died before the run ended"


@functools.cache
def poller_identity() -> str:
    """Which process this is, for logs that show who polled what (host:pid, read once)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PollLedger:
    """Journal-read times not yet written, newest per token (`db.queries.token_polls`)."""

    def __init__(self) -> None:
        self._polls: dict[UUID, Poll] = {}

    def note(self, token_id: UUID, at: datetime, *, succeeded: bool) -> None:
        """Remember a read of `token_id` at `at`."""
        self._polls[token_id] = Poll(token_id, at, succeeded)

    def take(self) -> list[Poll]:
        """Every remembered read, forgetting them (put them back with `restore` if the write fails)."""
        polls, self._polls = list(self._polls.values()), {}
        return polls

    def restore(self, polls: list[Poll]) -> None:
        """Put back reads whose write failed, unless a newer read of the token came meanwhile."""
        for poll in polls:
            self._polls.setdefault(poll.token_id, poll)

    def __len__(self) -> int:
        return len(self._polls)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found, for the scheduler.

    `events`: events read (0 for a quiet poll); `stop`: the token no longer syncs (its work ends);
    `wants_walk`: a backfill, resync or reconcile is due and the poll was not allowed to run it (it ran
    nothing); `retry_at`: an access-denied token's next attempt (no poll before); `failed`: the poll
    met an error and is to be tried again.
    """

    events: int = 0
    stop: bool = False
    wants_walk: bool = False
    retry_at: datetime | None = None
    failed: bool = False


class TokenWork:
    """The state one token's polls share: its row as last read, its Allegro session and sync."""

    def __init__(self, context: SyncContext, token_id: UUID, ledger: PollLedger) -> None:
        self._ctx = context
        self.token_id = token_id
        self._ledger = ledger
        self._state: TokenState | None = None
        self._sync: TokenSync | None = None
        self._taken_over = False
        # The last outcome written on the row was a success: a quiet poll need not write again.
        self._clean = False
        self.stale = True
        self.woken_for: datetime | None = None

    @property
    def state(self) -> TokenState | None:
        """The row as last read (None before the first poll)."""
        return self._state

    def changed(self, updated_at: datetime) -> None:
        """The scan saw the row at `updated_at`: read it again before the next poll if that is new."""
        if self._state is None or self._state.updated_at != updated_at:
            self.stale = True

    def recently_active(self, now: datetime, window_seconds: float) -> bool:
        """True when the token's newest event is at most `window_seconds` old."""
        last = self._state.last_event_at if self._state else None
        return last is not None and (now - last).total_seconds() <= window_seconds

    def needs_walk(self, now: datetime) -> bool:
        """True when the next poll runs a bootstrap, backfill, resync or reconcile (from the row as last
        read; False before the first read)."""
        state = self._state
        if state is None or self.stale:
            return False
        return walk_due(self._ctx.settings, state, now)

    async def poll(self, *, walks_allowed: bool) -> PollResult:
        """One poll: read the row if it changed, then one cycle (`cycle`).

        Never raises for what the next poll may cure; a failure is recorded on the row and the run."""
        with log_context(token_id=str(self.token_id), poller=poller_identity()):
            return await self._poll(walks_allowed=walks_allowed)

    async def _poll(self, *, walks_allowed: bool) -> PollResult:
        context, token_id = self._ctx, self.token_id
        if self.stale or self._state is None:
            try:
                state = await _load(context, token_id)
            except TRANSIENT as exc:
                # PostgreSQL away: keep the work (and its place in the schedule), try again next poll.
                log.warning("token row unreadable, retrying next poll: %s: %s", type(exc).__name__, exc)
                return PollResult(failed=True)
            if state is None or state.status not in token_sync.SYNCING_STATUSES:
                return PollResult(stop=True)
            if self._state is None:
                # A row that shows no error needs no success written by a quiet first poll.
                self._clean = state.last_error is None
            self._state, self.stale = state, False
        state = self._state
        if state.access_token is None:
            # Nothing to call Allegro with, and nothing will appear by waiting: only a new link helps.
            await _needs_reauth(context, token_id, NO_ACCESS_TOKEN)
            return PollResult(stop=True)
        now = datetime.now(UTC)
        if state.status == "access_denied" and state.access_retry_at and state.access_retry_at > now:
            return PollResult(retry_at=state.access_retry_at)
        if not walks_allowed and walk_due(context.settings, state, now):
            return PollResult(wants_walk=True)
        try:
            if not self._taken_over:
                await _close_earlier_runs(context, token_id)
                self._taken_over = True
            if self._sync is None:
                token = TokenAccess(
                    context.access,
                    token_id,
                    context.access.keyring.open(state.access_token),
                    state.access_expires_at,
                )
                self._sync = TokenSync(context, state, token)
            outcome = await cycle(context, self._sync, state, write_when_quiet=not self._clean)
            if state.status == "access_denied":
                await _restore_access(context, token_id)
                outcome = replace(outcome, wrote=True)
        except (*TRANSIENT, CryptoError) as exc:
            self._clean, self.stale = False, True
            self._ledger.note(token_id, now, succeeded=False)
            disposition = classify(exc)
            if disposition is Disposition.REAUTH:
                await _needs_reauth(context, token_id, str(exc))
                return PollResult(stop=True)
            if disposition is Disposition.ACCESS_DENIED:
                await _access_denied(context, state, exc)
                return PollResult(failed=True)
            log.warning("sync cycle failed, retrying next poll: %s: %s", type(exc).__name__, exc)
            if isinstance(exc, KafkaError | SQLAlchemyError):
                down = "kafka" if isinstance(exc, KafkaError) else "postgresql"
                context.metrics.dependency_up.labels(dependency=down).set(0)
            return PollResult(failed=True)
        self._ledger.note(token_id, now, succeeded=True)
        self._clean = True
        if outcome.wrote:
            self.stale = True  # read the row we wrote before the next poll
        context.metrics.dependency_up.labels(dependency="kafka").set(1)
        context.metrics.dependency_up.labels(dependency="postgresql").set(1)
        return PollResult(events=outcome.events)


@dataclass(frozen=True, slots=True)
class CycleOutcome:
    """Events the journal read, and whether the cycle wrote anything (then the row is read again)."""

    events: int
    wrote: bool


def walk_due(settings: PollerSettings, state: TokenState, now: datetime) -> bool:
    """True when a cycle on this row runs more than the journal: a bootstrap, a backfill, a resync or
    a reconcile."""
    if state.backfill_progress is None or cursor_expired(state, now) or state.backfill_completed_at is None:
        return True
    if state.resync_requested_at is not None and state.resync_source == "allegro":
        return True
    return _reconcile_due(settings, state, now)


def _reconcile_due(settings: PollerSettings, state: TokenState, now: datetime) -> bool:
    interval = timedelta(seconds=settings.reconcile_interval_seconds)
    return (
        state.reconcile_requested_at is not None
        or state.last_reconcile_at is None
        or now - state.last_reconcile_at >= interval
    )


async def _close_earlier_runs(context: SyncContext, token_id: UUID) -> None:
    """Close the token's runs still `running` before this process's first: their poller is gone.

    The group hands a token to this process only after the previous owner stopped its work (or its
    session expired), so no run recorded before now is alive; a cancelled one's own `failed` record, if it
    arrives later, still replaces the presumption (`db.queries.run_ends`)."""
    async with context.autocommit() as session:
        closed = await run_ends.abandon_runs_of_token(session, token_id, reason=ABANDONED)
    if closed:
        context.metrics.runs_abandoned.inc(closed)
        log.warning("closed %d sync runs left running by an earlier owner as abandoned", closed)


async def cycle(
    context: SyncContext, sync: TokenSync, state: TokenState, *, write_when_quiet: bool = True
) -> CycleOutcome:
    """One pass: bootstrap or fall back to a backfill if needed, backfill, resync, journal, reconcile."""
    token_id = state.id
    now = datetime.now(UTC)
    await sync.refresh_if_expiring(now)
    wrote = False
    if state.backfill_progress is None:
        await sync.bootstrap(reason=None)
        state, wrote = await _reload(context, token_id), True
    elif cursor_expired(state, now):
        reason = f"cursor {state.event_cursor} is older than the 60-day event retention: backfilling again"
        log.warning(reason)
        await sync.bootstrap(reason=reason)
        state, wrote = await _reload(context, token_id), True
    if state.backfill_completed_at is None:
        await sync.backfill(state)
        state, wrote = await _reload(context, token_id), True
    if state.resync_requested_at is not None and state.resync_source == "allegro":
        await sync.resync(state)
        state, wrote = await _reload(context, token_id), True
    sync_requested_at = state.sync_requested_at
    events = await sync.journal(state, write_when_quiet=write_when_quiet or wrote)
    wrote = wrote or bool(events) or write_when_quiet
    if sync_requested_at is not None:
        async with context.sessions() as session, session.begin():
            await token_sync.clear_sync_request(session, token_id, requested_at=sync_requested_at)
        wrote = True
    # The journal does not touch the reconcile time, so the state read before it decides; only a due
    # reconcile needs the fresh row (its cursor). An operator's request makes it due at once.
    requested_at = state.reconcile_requested_at
    if _reconcile_due(context.settings, state, datetime.now(UTC)):
        await sync.reconcile(await _reload(context, token_id))
        wrote = True
        if requested_at is not None:
            async with context.sessions() as session, session.begin():
                await token_sync.clear_reconcile_request(session, token_id, requested_at=requested_at)
    return CycleOutcome(events, wrote)


async def _load(context: SyncContext, token_id: UUID) -> TokenState | None:
    async with context.autocommit() as session:
        return await token_sync.load_token(session, token_id)


async def _reload(context: SyncContext, token_id: UUID) -> TokenState:
    state = await _load(context, token_id)
    if state is None:
        raise LookupError(f"token {token_id} disappeared")
    return state


def access_denied_delay(settings: PollerSettings, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` refusals in a row (1 = the first): doubling."""
    base, cap = settings.access_denied_backoff_seconds, settings.access_denied_backoff_max_seconds
    return float(min(cap, base * 2 ** min(max(attempts - 1, 0), 32)))


async def _access_denied(context: SyncContext, state: TokenState, error: BaseException) -> None:
    """Record the refusal and when to try again; the work stays, waiting, so access can come back."""
    now = datetime.now(UTC)
    attempts = (state.access_denied_attempts if state.status == "access_denied" else 0) + 1
    delay = access_denied_delay(context.settings, attempts)
    reason = f"access denied by Allegro: {error}"
    log.warning(
        "allegro denies access; trying again in %.0fs (refusal %d in a row): %s", delay, attempts, error
    )
    async with context.sessions() as session, session.begin():
        await token_sync.mark_access_denied(
            session, state.id, error=reason, now=now, retry_at=now + timedelta(seconds=delay)
        )


async def _restore_access(context: SyncContext, token_id: UUID) -> None:
    async with context.sessions() as session, session.begin():
        restored = await token_sync.restore_access(session, token_id)
    if restored:
        log.info("allegro grants access again: the account is active")


async def _needs_reauth(context: SyncContext, token_id: UUID, error: str) -> None:
    log.warning("no usable refresh token: the seller must link the account again (%s)", error)
    async with context.sessions() as session, session.begin():
        await token_sync.mark_needs_reauth(session, token_id, error=f"needs re-authorization: {error}")
