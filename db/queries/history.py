"""Reads of sync_history: a user's sync runs, newest first, optionally for one token or kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, tuple_
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


@dataclass(frozen=True, slots=True)
class RunKeyset:
    """Where a page of sync runs ended: the last run's start and id (the next page starts below it)."""

    started_at: datetime
    id: UUID


async def list_sync_runs(
    session: AsyncSession,
    *,
    user_id: str,
    token_id: UUID | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int,
    after: RunKeyset | None = None,
) -> list[SyncRunRow]:
    """The user's sync runs, newest start first, id breaking ties; with `after`, only the runs that come
    after that keyset in this order (one index range of `(user_id | token_id, started_at, id)`)."""
    statement = select(*_COLUMNS).where(SyncHistory.user_id == user_id)
    if token_id is not None:
        statement = statement.where(SyncHistory.token_id == token_id)
    if kind is not None:
        statement = statement.where(SyncHistory.kind == kind)
    if status is not None:
        statement = statement.where(SyncHistory.status == status)
    if after is not None:
        statement = statement.where(
            tuple_(SyncHistory.started_at, SyncHistory.id) < tuple_(after.started_at, after.id)
        )
    statement = statement.order_by(SyncHistory.started_at.desc(), SyncHistory.id.desc()).limit(limit)
    return [SyncRunRow(*row) for row in await session.execute(statement)]
