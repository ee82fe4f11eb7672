"""The loop that keeps one active token in sync until it stops being active or its work is revoked."""

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

from allegro_api import AllegroError, NeedsReauth
from core.crypto import CryptoError
from core.logging import log_context
from db.queries import run_ends, token_sync
from db.queries.token_sync import TokenState
from producers.access import TokenSession
from producers.sync import SyncContext, TokenSync, cursor_expired

log = logging.getLogger(__name__)

# Failures a run may meet that the next cycle may well not: logged and recorded, then retried.
TRANSIENT = (AllegroError, KafkaError, SQLAlchemyError, OSError, asyncio.TimeoutError)
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
        if state is None or state.status != "active" or state.access_token is None:
            return
        try:
            if not taken_over:
                await _close_earlier_runs(context, token_id)
                taken_over = True
            if sync is None:
                session = TokenSession(
                    context.access,
                    token_id,
                    context.access.keyring.open(state.access_token),
                    state.access_expires_at,
                )
                sync = TokenSync(context, state, session)
            await cycle(context, sync, state)
        except NeedsReauth as exc:
            await _needs_reauth(context, token_id, str(exc))
            return
        except (*TRANSIENT, CryptoError) as exc:
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


async def _needs_reauth(context: SyncContext, token_id: UUID, error: str) -> None:
    log.warning("refresh token rejected: the seller must link the account again")
    async with context.sessions() as session, session.begin():
        await token_sync.mark_needs_reauth(session, token_id, error=f"needs re-authorization: {error}")
