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
from db.queries import token_sync
from db.queries.token_sync import TokenState
from producers.access import TokenSession
from producers.sync import SyncContext, TokenSync, cursor_expired
from producers.windows import IncompleteWalk

log = logging.getLogger(__name__)

# Failures a run may meet that the next cycle may well not: logged and recorded, then retried.
# A walk that could not account for a window's forms is one too: its position stays before that window.
TRANSIENT = (AllegroError, KafkaError, SQLAlchemyError, OSError, asyncio.TimeoutError, IncompleteWalk)


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
    while True:
        state = await _load(context, token_id)
        if state is None or state.status != "active" or state.access_token is None:
            return
        try:
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
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=context.settings.journal_interval_seconds)


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
    # reconcile needs the fresh row (its cursor).
    interval = timedelta(seconds=context.settings.reconcile_interval_seconds)
    if state.last_reconcile_at is None or datetime.now(UTC) - state.last_reconcile_at >= interval:
        await sync.reconcile(await _reload(context, token_id))


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
