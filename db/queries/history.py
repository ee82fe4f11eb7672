"""Reads of sync_history: a user's sync runs, newest first, optionally for one token or kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import SyncHistory


@dataclass(frozen=True, slots=True)
class SyncRunRow:
    """One sync run as recorded."""

    id: UUID
    token_id: UUID
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    events_read: int
    orders_fetched: int
    orders_changed: int
    requests_made: int
    cursor_from: str | None
    cursor_to: str | None
    error: str | None


_COLUMNS = tuple(getattr(SyncHistory, name) for name in SyncRunRow.__dataclass_fields__)


async def list_sync_runs(
    session: AsyncSession,
    *,
    user_id: str,
    token_id: UUID | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[SyncRunRow]:
    """The user's sync runs, newest start first, id breaking ties so pages are stable."""
    statement = select(*_COLUMNS).where(SyncHistory.user_id == user_id)
    if token_id is not None:
        statement = statement.where(SyncHistory.token_id == token_id)
    if kind is not None:
        statement = statement.where(SyncHistory.kind == kind)
    if status is not None:
        statement = statement.where(SyncHistory.status == status)
    statement = (
        statement.order_by(SyncHistory.started_at.desc(), SyncHistory.id.desc()).limit(limit).offset(offset)
    )
    return [SyncRunRow(*row) for row in (await session.execute(statement))]
