"""The loop that keeps one token in sync until it stops syncing (unlinked, needs re-auth) or its work is
revoked.

What a failed cycle does follows `allegro_api.retrying.classify`: a dead refresh token (or none stored)
makes the token `needs_reauth` and ends the work; a 403 makes it `access_denied` and the next cycle
waits a growing interval (`POLLER__ACCESS_DENIED_BACKOFF_SECONDS`, doubling per refusal up to
`..._MAX_SECONDS`); the first cycle that works makes it `active` again. Anything else transient is
logged, recorded on the run, and tried again next cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
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
from db.queries.token_sync import TokenState
from producers.access import TokenAccess
from producers.sync import SyncContext, TokenSync, cursor_expired
from producers.windows import IncompleteWalk

log = logging.getLogger(__name__)

# Failures a run may meet that the next cycle may well not: logged and recorded, then retried. Which
# Allegro errors change the token's state instead is `classify`'s decision (see `_loop`). A walk that
# could not account for a window's forms is one too: its position stays before that window.
TRANSIENT = (AllegroError, KafkaError, SQLAlchemyError, OSError, asyncio.TimeoutError, IncompleteWalk)
NO_ACCESS_TOKEN = "no access token stored"  # noqa: S105 - an error text, not a secret
ABANDONED = "abandoned: its poller stopped or died before the run ended"


def poller_identity() -> str:
    """Which process this is, for logs that show who polled what."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_token(context: SyncContext, token_id: UUID, wake: asyncio.Event) -> None:
    """Sync one token cycle after cycle; returns when it is no longer active (unlinked, needs re-auth)."""
    with log_context(token_id=str(token_id), poller=poller_identity()):
        log.info("token work started")
        context.metrics.tokens_owned.inc()
        try:
            await _loop(context, token_id, wake)
        finally:
            context.metrics.tokens_owned.dec()
            log.info("token work stopped")


async def _loop(context: SyncContext, token_id: UUID, wake: asyncio.Event) -> None:
    sync: TokenSync | None = None
    taken_over = False
    while True:
        try:
            state = await _load(context, token_id)
        except TRANSIENT as exc:
            # PostgreSQL away: keep the work (and its place in the schedule) and try again next cycle.
            log.warning("token row unreadable, retrying next cycle: %s: %s", type(exc).__name__, exc)
            await _pause(context, wake)
            continue
        if state is None or state.status not in token_sync.SYNCING_STATUSES:
            return
        if state.access_token is None:
            # Nothing to call Allegro with, and nothing will appear by waiting: only a new link helps.
            await _needs_reauth(context, token_id, NO_ACCESS_TOKEN)
            return
        if state.status == "access_denied" and not await _wait_for_retry(state, wake):
            continue  # woken early: read the row again (it may have been unlinked)
        try:
            if not taken_over:
                await _close_earlier_runs(context, token_id)
                taken_over = True
            if sync is None:
                token = TokenAccess(
                    context.access,
                    token_id,
                    context.access.keyring.open(state.access_token),
                    state.access_expires_at,
                )
                sync = TokenSync(context, state, token)
            await cycle(context, sync, state)
            if state.status == "access_denied":
                await _restore_access(context, token_id)
        except (*TRANSIENT, CryptoError) as exc:
            disposition = classify(exc)
            if disposition is Disposition.REAUTH:
                await _needs_reauth(context, token_id, str(exc))
                return
            if disposition is Disposition.ACCESS_DENIED:
                await _access_denied(context, state, exc)
                continue
            log.warning("sync cycle failed, retrying next cycle: %s: %s", type(exc).__name__, exc)
            if isinstance(exc, KafkaError | SQLAlchemyError):
                down = "kafka" if isinstance(exc, KafkaError) else "postgresql"
                context.metrics.dependency_up.labels(dependency=down).set(0)
        else:  # a whole cycle read and wrote both
            context.metrics.dependency_up.labels(dependency="kafka").set(1)
            context.metrics.dependency_up.labels(dependency="postgresql").set(1)
        await _pause(context, wake)


async def _pause(context: SyncContext, wake: asyncio.Event) -> None:
    """Wait for the next cycle: the journal interval, or less when woken (sync-now, resync)."""
    wake.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=context.settings.journal_interval_seconds)


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


async def cycle(context: SyncContext, sync: TokenSync, state: TokenState) -> None:
    """One pass: bootstrap or fall back to a backfill if needed, backfill, resync, journal, reconcile."""
    token_id = state.id
    now = datetime.now(UTC)
    await sync.refresh_if_expiring(now)
    if state.backfill_progress is None:
        await sync.bootstrap(reason=None)
        state = await _reload(context, token_id)
    elif cursor_expired(state, now):
        reason = f"cursor {state.event_cursor} is older than the 60-day event retention: backfilling again"
        log.warning(reason)
        await sync.bootstrap(reason=reason)
        state = await _reload(context, token_id)
    if state.backfill_completed_at is None:
        await sync.backfill(state)
        state = await _reload(context, token_id)
    if state.resync_requested_at is not None and state.resync_source == "allegro":
        await sync.resync(state)
        state = await _reload(context, token_id)
    sync_requested_at = state.sync_requested_at
    await sync.journal(state)
    if sync_requested_at is not None:
        async with context.sessions() as session, session.begin():
            await token_sync.clear_sync_request(session, token_id, requested_at=sync_requested_at)
    # The journal does not touch the reconcile time, so the state read before it decides; only a due
    # reconcile needs the fresh row (its cursor). An operator's request makes it due at once.
    interval = timedelta(seconds=context.settings.reconcile_interval_seconds)
    requested_at = state.reconcile_requested_at
    if (
        requested_at is not None
        or state.last_reconcile_at is None
        or datetime.now(UTC) - state.last_reconcile_at >= interval
    ):
        await sync.reconcile(await _reload(context, token_id))
        if requested_at is not None:
            async with context.sessions() as session, session.begin():
                await token_sync.clear_reconcile_request(session, token_id, requested_at=requested_at)


async def _load(context: SyncContext, token_id: UUID) -> TokenState | None:
    async with context.autocommit() as session:
        return await token_sync.load_token(session, token_id)


async def _reload(context: SyncContext, token_id: UUID) -> TokenState:
    state = await _load(context, token_id)
    if state is None:
        raise LookupError(f"token {token_id} disappeared")
    return state


async def _wait_for_retry(state: TokenState, wake: asyncio.Event) -> bool:
    """Sleep until an access_denied token's next attempt; False when woken earlier."""
    delay = 0.0
    if state.access_retry_at is not None:
        delay = (state.access_retry_at - datetime.now(UTC)).total_seconds()
    if delay <= 0:
        return True
    wake.clear()
    try:
        await asyncio.wait_for(wake.wait(), timeout=delay)
    except TimeoutError:
        return True
    return False


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
