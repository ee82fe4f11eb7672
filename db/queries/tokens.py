"""Token rows as the API sees them: create a pending link, read, unlink, record sync requests.

Every read selects the non-secret columns only, so sealed tokens and device codes never leave the
database on a read path. Every query is scoped by user_id: another user's token is simply absent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.states import TokenStatus
from db.models import Order, OrderRevision, UserToken


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token row without its secrets."""

    id: UUID
    user_id: str
    status: str
    seller_id: str | None
    login: str | None
    user_code: str | None
    verification_uri: str | None
    verification_uri_complete: str | None
    device_expires_at: datetime | None
    device_interval: int | None
    event_cursor: str | None
    cursor_updated_at: datetime | None
    last_event_at: datetime | None
    backfill_progress: dict[str, Any] | None
    backfill_completed_at: datetime | None
    last_reconcile_at: datetime | None
    last_sync_at: datetime | None
    last_success_at: datetime | None
    last_polled_at: datetime | None
    last_error: str | None
    access_denied_since: datetime | None
    access_retry_at: datetime | None
    access_denied_attempts: int
    sync_requested_at: datetime | None
    resync_requested_at: datetime | None
    resync_since: datetime | None
    resync_source: str | None
    relinked_to: UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewLink:
    """What the device flow returned, with the device code already sealed."""

    sealed_device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: datetime
    interval_seconds: int
    next_poll_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCounts:
    """How much of a token's data is stored."""

    orders: int
    revisions: int


_VIEW_COLUMNS = tuple(getattr(UserToken, name) for name in TokenView.__dataclass_fields__)
# Everything a link leaves behind that could act for the seller; wiped on unlink.
_SECRET_FIELDS: dict[str, Any] = {
    "access_token": None,
    "refresh_token": None,
    "access_expires_at": None,
    "device_code": None,
    "device_next_poll_at": None,
}


async def create_pending_token(session: AsyncSession, *, user_id: str, link: NewLink) -> TokenView:
    """Insert a `pending` row for a device flow that the poller will complete."""
    statement = (
        insert(UserToken)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            status=TokenStatus.PENDING,
            device_code=link.sealed_device_code,
            user_code=link.user_code,
            verification_uri=link.verification_uri,
            verification_uri_complete=link.verification_uri_complete,
            device_expires_at=link.expires_at,
            device_interval=link.interval_seconds,
            device_next_poll_at=link.next_poll_at,
        )
        .returning(*_VIEW_COLUMNS)
    )
    row = (await session.execute(statement)).one()
    return TokenView(*row)


async def list_tokens(session: AsyncSession, *, user_id: str) -> list[TokenView]:
    """Every token of the user, newest first (unlinked ones included: their orders are kept; `relinked`
    link requests left out: they hold nothing, the token they renewed is listed)."""
    statement = (
        select(*_VIEW_COLUMNS)
        .where(UserToken.user_id == user_id, UserToken.status != TokenStatus.RELINKED)
        .order_by(UserToken.created_at.desc(), UserToken.id.desc())
    )
    return [TokenView(*row) for row in (await session.execute(statement))]


async def get_token(session: AsyncSession, *, user_id: str, token_id: UUID) -> TokenView | None:
    """One token of the user, or None (also when it belongs to someone else)."""
    statement = select(*_VIEW_COLUMNS).where(UserToken.id == token_id, UserToken.user_id == user_id)
    row = (await session.execute(statement)).first()
    return TokenView(*row) if row is not None else None


async def count_stored(session: AsyncSession, *, token_id: UUID) -> StoredCounts:
    """Orders and revisions stored for a token (index-only scans of the unique indexes)."""
    orders = select(func.count()).select_from(Order).where(Order.token_id == token_id).scalar_subquery()
    revisions = (
        select(func.count())
        .select_from(OrderRevision)
        .where(OrderRevision.token_id == token_id)
        .scalar_subquery()
    )
    row = (await session.execute(select(orders, revisions))).one()
    return StoredCounts(orders=row[0], revisions=row[1])


async def unlink_token(session: AsyncSession, *, user_id: str, token_id: UUID) -> bool:
    """Mark the token unlinked and wipe its secrets; its orders stay. False when it is not the user's."""
    statement = (
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.user_id == user_id)
        .values(status=TokenStatus.UNLINKED, updated_at=func.now(), **_SECRET_FIELDS)
        .returning(UserToken.id)
    )
    return (await session.execute(statement)).first() is not None


async def record_sync_request(
    session: AsyncSession, *, user_id: str, token_id: UUID, now: datetime
) -> TokenView | None:
    """Ask the poller to sync an active token now; None when the token is not the user's or not active."""
    statement = (
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.user_id == user_id, UserToken.status == TokenStatus.ACTIVE)
        .values(sync_requested_at=now, updated_at=func.now())
        .returning(*_VIEW_COLUMNS)
    )
    row = (await session.execute(statement)).first()
    return TokenView(*row) if row is not None else None


async def record_reconcile_request(
    session: AsyncSession, *, user_id: str, token_id: UUID, now: datetime
) -> bool:
    """Ask the poller to reconcile an active token now; False when the token is not the user's or not
    active. A sync-now request goes with it: that is what wakes a token whose work waits between cycles."""
    statement = (
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.user_id == user_id, UserToken.status == TokenStatus.ACTIVE)
        .values(reconcile_requested_at=now, sync_requested_at=now, updated_at=func.now())
        .returning(UserToken.id)
    )
    return (await session.execute(statement)).first() is not None


async def record_resync_request(
    session: AsyncSession, *, user_id: str, token_id: UUID, source: str, since: datetime, now: datetime
) -> TokenView | None:
    """Ask for a resync from `source` since a time; None when the token is not the user's or not active."""
    statement = (
        update(UserToken)
        .where(UserToken.id == token_id, UserToken.user_id == user_id, UserToken.status == TokenStatus.ACTIVE)
        .values(resync_requested_at=now, resync_since=since, resync_source=source, updated_at=func.now())
        .returning(*_VIEW_COLUMNS)
    )
    row = (await session.execute(statement)).first()
    return TokenView(*row) if row is not None else None
