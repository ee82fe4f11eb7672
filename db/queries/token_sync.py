"""The poller's queries: token rows (link state, secrets, cursor, backfill progress) and stored revisions.

Every function takes the session first and leaves committing to the caller, except where a docstring
says the write must be durable before anything else happens (a rotated token pair). Every error text
written to `last_error` is scrubbed of secrets here too (`core.redaction`), whoever built it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Text, and_, any_, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from core.redaction import scrub_optional
from core.states import TokenStatus
from db.models import Order, UserToken

# `access_denied` stays scheduled: its work probes Allegro at growing intervals until access returns.
SCHEDULED_STATUSES = (TokenStatus.PENDING, TokenStatus.ACTIVE, TokenStatus.ACCESS_DENIED)
# Statuses whose work syncs (the others only complete links or wait for the seller).
SYNCING_STATUSES = (TokenStatus.ACTIVE, TokenStatus.ACCESS_DENIED)


@dataclass(frozen=True, slots=True)
class TokenSchedule:
    """What the scheduler needs to know about a token to decide whether to run anything for it."""

    id: UUID
    status: str
    device_next_poll_at: datetime | None
    sync_requested_at: datetime | None
    resync_requested_at: datetime | None
    # Tells the scheduler whether the row changed since its work last read it.
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TokenState:
    """A token row as the sync reads it; secrets are still sealed."""

    id: UUID
    user_id: str
    seller_id: str | None
    login: str | None
    status: str
    access_token: str | None
    refresh_token: str | None
    access_expires_at: datetime | None
    event_cursor: str | None
    cursor_updated_at: datetime | None
    backfill_progress: dict[str, Any] | None
    backfill_completed_at: datetime | None
    last_reconcile_at: datetime | None
    sync_requested_at: datetime | None
    resync_requested_at: datetime | None
    resync_since: datetime | None
    resync_source: str | None
    access_retry_at: datetime | None
    access_denied_attempts: int
    reconcile_requested_at: datetime | None
    last_event_at: datetime | None
    last_polled_at: datetime | None
    last_error: str | None
    updated_at: datetime


_TOKEN_STATE_COLUMNS = [getattr(UserToken, field.name) for field in fields(TokenState)]


@dataclass(frozen=True, slots=True)
class PendingLink:
    """A device flow waiting for the user; device_code is sealed."""

    id: UUID
    user_id: str
    device_code: str | None
    device_expires_at: datetime | None
    device_interval: int | None


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """The stored revision of one order, when Allegro last changed it and when it was bought."""

    revision: str
    updated_at: datetime | None
    bought_at: datetime | None


_SCHEDULE_COLUMNS = (
    UserToken.id,
    UserToken.status,
    UserToken.device_next_poll_at,
    UserToken.sync_requested_at,
    UserToken.resync_requested_at,
    UserToken.updated_at,
)


async def list_scheduled_tokens(session: AsyncSession) -> list[TokenSchedule]:
    """Tokens the poller has work for: pending links and active accounts."""
    rows = await session.execute(select(*_SCHEDULE_COLUMNS).where(UserToken.status.in_(SCHEDULED_STATUSES)))
    return [TokenSchedule(*row) for row in rows.all()]


async def list_changed_tokens(session: AsyncSession, *, since: datetime) -> list[TokenSchedule]:
    """Rows of any status changed at or after `since`, and every pending link (their polls are due by
    time, not by change): what the poller's scan reads between full scans."""
    rows = await session.execute(
        select(*_SCHEDULE_COLUMNS).where(
            or_(UserToken.updated_at >= since, UserToken.status == TokenStatus.PENDING)
        )
    )
    return [TokenSchedule(*row) for row in rows.all()]


async def load_token(session: AsyncSession, token_id: UUID, *, for_update: bool = False) -> TokenState | None:
    """One token row, optionally locked until the transaction ends."""
    # Plain columns, not the mapped entity: the poller loads every token once per cycle, and the
    # identity-map bookkeeping of an entity load costs several times the query itself.
    query = select(*_TOKEN_STATE_COLUMNS).where(UserToken.id == token_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else TokenState(*row)


async def load_pending_link(session: AsyncSession, token_id: UUID) -> PendingLink | None:
    """A pending row's device-flow state, locked so that one poll at a time touches it."""
    row = (
        await session.execute(
            select(UserToken)
            .where(UserToken.id == token_id, UserToken.status == TokenStatus.PENDING)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return PendingLink(row.id, row.user_id, row.device_code, row.device_expires_at, row.device_interval)


async def schedule_next_device_poll(
    session: AsyncSession,
    token_id: UUID,
    *,
    next_poll_at: datetime,
    interval: int,
    error: str | None = None,
) -> None:
    """Remember when to poll the token endpoint again (state lives in the row, so restarts resume), and
    why the last poll failed, if it did."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.status == TokenStatus.PENDING)
        .values(device_next_poll_at=next_poll_at, device_interval=interval, last_error=scrub_optional(error))
    )


async def end_link(session: AsyncSession, token_id: UUID, *, status: str, error: str | None) -> None:
    """Close a device flow that will never complete (`link_denied`, `link_expired`)."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.status == TokenStatus.PENDING)
        .values(status=status, device_code=None, device_next_poll_at=None, last_error=scrub_optional(error))
    )


async def activate_link(
    session: AsyncSession,
    token_id: UUID,
    *,
    user_id: str,
    seller_id: str,
    login: str | None,
    access_token: str,
    refresh_token: str,
    access_expires_at: datetime,
    scope: str | None,
) -> UUID:
    """Give (user, seller) the new credentials; the id of the token that now holds them.

    When the user had linked this seller before (active, `needs_reauth`, unlinked, ...), that token takes
    the credentials and goes on with its orders, revisions, cursor and backfill, and the pending row ends
    as `relinked` pointing at it: relinking never starts a second copy of the account's backup. Of
    several earlier tokens (rows from before relinking continued), a syncing one wins, else the newest.
    Otherwise the pending row itself becomes the active link. `login` None keeps a known login.
    """
    previous = (
        await session.execute(
            select(UserToken.id)
            .where(
                UserToken.user_id == user_id,
                UserToken.seller_id == seller_id,
                UserToken.id != token_id,
                UserToken.status.not_in(
                    (
                        TokenStatus.PENDING,
                        TokenStatus.RELINKED,
                        TokenStatus.LINK_EXPIRED,
                        TokenStatus.LINK_DENIED,
                    )
                ),
            )
            .order_by(UserToken.status.in_(SYNCING_STATUSES).desc(), UserToken.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    holder = previous if previous is not None else token_id
    if previous is not None:
        await session.execute(
            update(UserToken)
            .where(UserToken.id == token_id)
            .values(status=TokenStatus.RELINKED, relinked_to=previous, seller_id=seller_id, **_NO_CREDENTIALS)
        )
    values: dict[str, Any] = {
        "status": TokenStatus.ACTIVE,
        "seller_id": seller_id,
        "access_token": access_token,
        "refresh_token": refresh_token,
        "access_expires_at": access_expires_at,
        "scope": scope,
        "device_code": None,
        "device_next_poll_at": None,
        "last_error": None,
        # fresh consent: whatever Allegro refused before is tried again at once
        "access_denied_since": None,
        "access_retry_at": None,
        "access_denied_attempts": 0,
    }
    if login is not None:
        values["login"] = login
    await session.execute(update(UserToken).where(UserToken.id == holder).values(**values))
    return holder


# What a row that no longer acts for the seller must not keep.
_NO_CREDENTIALS: dict[str, Any] = {
    "access_token": None,
    "refresh_token": None,
    "access_expires_at": None,
    "device_code": None,
    "device_next_poll_at": None,
}


async def save_token_pair(
    session: AsyncSession,
    token_id: UUID,
    *,
    access_token: str,
    refresh_token: str,
    access_expires_at: datetime,
    scope: str | None,
) -> None:
    """Store a refreshed pair (sealed); the caller commits before using the new access token."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id)
        .values(
            access_token=access_token,
            refresh_token=refresh_token,
            access_expires_at=access_expires_at,
            scope=scope,
        )
    )


async def mark_needs_reauth(session: AsyncSession, token_id: UUID, *, error: str) -> None:
    """The refresh token is dead (or none is stored): the seller must link again; the poller stops."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.status.in_(SYNCING_STATUSES))
        .values(status=TokenStatus.NEEDS_REAUTH, last_error=scrub_optional(error), access_retry_at=None)
    )


async def mark_access_denied(
    session: AsyncSession, token_id: UUID, *, error: str, now: datetime, retry_at: datetime
) -> None:
    """Allegro refuses access (403): `access_denied` with its reason, the next attempt at `retry_at`."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.status.in_(SYNCING_STATUSES))
        .values(
            status=TokenStatus.ACCESS_DENIED,
            last_error=scrub_optional(error),
            last_sync_at=now,
            access_denied_since=func.coalesce(UserToken.access_denied_since, now),
            access_retry_at=retry_at,
            access_denied_attempts=UserToken.access_denied_attempts + 1,
        )
    )


async def restore_access(session: AsyncSession, token_id: UUID) -> bool:
    """Access works again: `access_denied` becomes `active`; False when the row was not access_denied."""
    result = await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.status == TokenStatus.ACCESS_DENIED)
        .values(
            status=TokenStatus.ACTIVE,
            access_denied_since=None,
            access_retry_at=None,
            access_denied_attempts=0,
        )
        .returning(UserToken.id)
    )
    return result.first() is not None


async def start_backfill(
    session: AsyncSession, token_id: UUID, *, cursor: str | None, progress: dict[str, Any], now: datetime
) -> None:
    """Store the bootstrapped cursor together with a fresh backfill plan (one statement: nothing between)."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id)
        .values(
            event_cursor=cursor,
            cursor_updated_at=now,
            backfill_progress=progress,
            backfill_completed_at=None,
        )
    )


async def save_backfill_progress(
    session: AsyncSession, token_id: UUID, *, progress: dict[str, Any], completed_at: datetime | None
) -> None:
    """Record the windows done so far; `completed_at` when the whole range is."""
    values: dict[str, Any] = {"backfill_progress": progress}
    if completed_at is not None:
        values.update(backfill_completed_at=completed_at, last_reconcile_at=completed_at)
    await session.execute(update(UserToken).where(UserToken.id == token_id).values(**values))


async def advance_cursor(
    session: AsyncSession,
    token_id: UUID,
    *,
    cursor: str | None,
    last_event_at: datetime | None,
    now: datetime,
    succeeded: bool = False,
) -> None:
    """Move the event cursor; call only after Kafka acknowledged every publish of the page.

    `succeeded` also records a successful sync at `now` (what `record_sync_outcome` writes), so the
    last page of a journal run costs one statement.
    """
    values: dict[str, Any] = {"event_cursor": cursor, "cursor_updated_at": now}
    if last_event_at is not None:
        values["last_event_at"] = func.greatest(
            func.coalesce(UserToken.last_event_at, last_event_at), last_event_at
        )
    if succeeded:
        values |= _outcome_values(now, None)
    await session.execute(update(UserToken).where(UserToken.id == token_id).values(**values))


async def save_reconcile_time(session: AsyncSession, token_id: UUID, *, at: datetime) -> None:
    """Remember the start of the last complete reconciliation."""
    await session.execute(update(UserToken).where(UserToken.id == token_id).values(last_reconcile_at=at))


async def record_sync_outcome(
    session: AsyncSession, token_id: UUID, *, at: datetime, error: str | None
) -> None:
    """Last sync time, and last success or last error."""
    await session.execute(
        update(UserToken).where(UserToken.id == token_id).values(**_outcome_values(at, error))
    )


def _outcome_values(at: datetime, error: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {"last_sync_at": at, "last_error": scrub_optional(error)}
    if error is None:
        values["last_success_at"] = at
    return values


async def clear_sync_request(session: AsyncSession, token_id: UUID, *, requested_at: datetime) -> None:
    """Clear a sync-now request, unless a newer one arrived meanwhile."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.sync_requested_at <= requested_at)
        .values(sync_requested_at=None)
    )


async def clear_reconcile_request(session: AsyncSession, token_id: UUID, *, requested_at: datetime) -> None:
    """Clear a reconcile-now request, unless a newer one arrived meanwhile."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.reconcile_requested_at <= requested_at)
        .values(reconcile_requested_at=None)
    )


async def clear_resync_request(session: AsyncSession, token_id: UUID, *, requested_at: datetime) -> None:
    """Clear a resync request, unless a newer one arrived meanwhile."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.resync_requested_at <= requested_at)
        .values(resync_requested_at=None, resync_since=None, resync_source=None)
    )


async def has_orders(session: AsyncSession, token_id: UUID) -> bool:
    """True when the orders table holds at least one order of this token."""
    query = select(Order.id).where(Order.token_id == token_id).limit(1)
    return (await session.execute(query)).first() is not None


async def stored_orders(
    session: AsyncSession, token_id: UUID, form_ids: Iterable[str]
) -> dict[str, StoredOrder]:
    """The stored revision (and purchase time) of each of these forms that the orders table holds."""
    ids = list(set(form_ids))
    if not ids:
        return {}
    # `= ANY(array)`, not `IN (...)`: one statement text whatever the count, so asyncpg prepares it once.
    rows = await session.execute(
        select(Order.checkout_form_id, Order.revision, Order.updated_at, Order.bought_at).where(
            Order.token_id == token_id, Order.checkout_form_id == any_(cast(ids, ARRAY(Text)))
        )
    )
    return {
        form_id: StoredOrder(revision, updated, bought) for form_id, revision, updated, bought in rows.all()
    }


@dataclass(frozen=True, slots=True)
class SealedSecrets:
    """The sealed secrets of one row, for key rotation."""

    id: UUID
    access_token: str | None
    refresh_token: str | None
    device_code: str | None


async def rows_with_secrets(session: AsyncSession, *, after: UUID | None, limit: int) -> list[SealedSecrets]:
    """A batch of rows holding any sealed value, by id, locked for re-sealing."""
    has_secret = or_(
        UserToken.access_token.is_not(None),
        UserToken.refresh_token.is_not(None),
        UserToken.device_code.is_not(None),
    )
    condition = has_secret if after is None else and_(has_secret, UserToken.id > after)
    rows = await session.execute(
        select(UserToken.id, UserToken.access_token, UserToken.refresh_token, UserToken.device_code)
        .where(condition)
        .order_by(UserToken.id)
        .limit(limit)
        .with_for_update()
    )
    return [SealedSecrets(*row) for row in rows.all()]


async def save_sealed_secrets(session: AsyncSession, secrets: SealedSecrets) -> None:
    """Write one row's re-sealed values."""
    await session.execute(
        update(UserToken)
        .where(UserToken.id == secrets.id)
        .values(
            access_token=secrets.access_token,
            refresh_token=secrets.refresh_token,
            device_code=secrets.device_code,
        )
    )
