"""Completing device-flow links in the background: poll the token endpoint at the row's interval.

The state (sealed device code, interval, next poll time) lives in the row, so any poller process can
pick the link up after a restart. The row is locked (SKIP LOCKED) for the duration of one poll, so two
processes never spend one device code twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from allegro_api import AllegroError, Denied, Granted, InvalidCode, Pending, SlowDown
from allegro_api.retrying import is_transient
from core.logging import log_context
from core.states import TokenStatus
from db.queries import token_sync
from producers.access import AllegroAccess

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 5


async def complete_link(access: AllegroAccess, token_id: UUID) -> TokenStatus | None:
    """Poll a pending link once if it is due; the token's status afterwards (None when nothing was due)."""
    with log_context(token_id=str(token_id)):
        async with access.sessions() as session, session.begin():
            link = await token_sync.load_pending_link(session, token_id)
            if link is None:
                return None
            now = datetime.now(UTC)
            if link.device_code is None or (
                link.device_expires_at is not None and link.device_expires_at <= now
            ):
                await token_sync.end_link(
                    session, token_id, status=TokenStatus.LINK_EXPIRED, error="device code expired"
                )
                log.info("link expired before the user approved it")
                return TokenStatus.LINK_EXPIRED
            interval = link.device_interval if link.device_interval is not None else DEFAULT_INTERVAL_SECONDS
            await access.governor.acquire(token_id)
            try:
                outcome = await access.auth.poll_device_token(access.keyring.open(link.device_code))
            except AllegroError as exc:
                # Transient or not (our client credentials, an odd answer), the link is not over: the
                # user may still approve, so poll again later and show why this poll failed.
                error = f"device-flow poll failed: {type(exc).__name__}: {exc}"
                if is_transient(exc):
                    log.warning("%s; trying again later", error)
                else:
                    log.error("%s; trying again later", error)
                await _poll_later(session, token_id, now, interval, error=error)
                return TokenStatus.PENDING
            if isinstance(outcome, Granted):
                return await _activate(access, session, token_id, link.user_id, outcome, now)
            if isinstance(outcome, Pending):
                await _poll_later(session, token_id, now, interval)
                return TokenStatus.PENDING
            if isinstance(outcome, SlowDown):
                # RFC 8628: slow_down means every later poll waits longer.
                await _poll_later(session, token_id, now, interval + outcome.increment_seconds)
                return TokenStatus.PENDING
            if isinstance(outcome, Denied):
                await token_sync.end_link(
                    session, token_id, status=TokenStatus.LINK_DENIED, error="the user denied access"
                )
                log.info("link denied by the user")
                return TokenStatus.LINK_DENIED
            assert isinstance(outcome, InvalidCode)  # noqa: S101 - the outcome union is exhausted here
            await token_sync.end_link(
                session,
                token_id,
                status=TokenStatus.LINK_EXPIRED,
                error=f"device code rejected: {outcome.error}",
            )
            log.info("device code rejected (%s): link expired", outcome.error)
            return TokenStatus.LINK_EXPIRED


async def _poll_later(
    session: AsyncSession, token_id: UUID, now: datetime, interval: int, *, error: str | None = None
) -> None:
    await token_sync.schedule_next_device_poll(
        session, token_id, next_poll_at=now + timedelta(seconds=interval), interval=interval, error=error
    )


async def _activate(
    access: AllegroAccess,
    session: AsyncSession,
    token_id: UUID,
    user_id: str,
    granted: Granted,
    now: datetime,
) -> TokenStatus:
    """Store the sealed pair, the seller id and login; the status the link request ends in.

    `active` for a first link; `relinked` when the user had linked this seller before, whose token then
    holds the new pair and goes on with its backup (db.queries.token_sync.activate_link)."""
    tokens = granted.tokens
    seller_id = tokens.seller_id
    if seller_id is None:
        await token_sync.end_link(
            session,
            token_id,
            status=TokenStatus.LINK_EXPIRED,
            error="access token names no seller (user_name)",
        )
        log.error("granted token carries no user_name claim; cannot link")
        return TokenStatus.LINK_EXPIRED
    login = await _login(access, token_id, tokens.access_token)
    holder = await token_sync.activate_link(
        session,
        token_id,
        user_id=user_id,
        seller_id=seller_id,
        login=login,
        access_token=access.keyring.seal(tokens.access_token),
        refresh_token=access.keyring.seal(tokens.refresh_token),
        access_expires_at=tokens.access_expires_at(now),
        scope=tokens.scope,
    )
    if holder != token_id:
        # The user had linked this account before: its backup goes on under the earlier token.
        log.info("account relinked", extra={"seller_id": seller_id, "relinked_to": str(holder)})
        return TokenStatus.RELINKED
    log.info("account linked", extra={"seller_id": seller_id})
    return TokenStatus.ACTIVE


async def _login(access: AllegroAccess, token_id: UUID, access_token: str) -> str | None:
    """The account's login from `GET /me`, or None when Allegro does not tell it now (a known login is
    kept; the link itself does not depend on it)."""
    try:
        profile = await access.client.me(access_token=access_token, governor_key=token_id)
    except AllegroError as exc:
        log.warning("could not read the account's login (GET /me): %s", exc)
        return None
    return profile.login
