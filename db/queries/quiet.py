"""Whether the poller side is quiet: every active token caught up and idle, no sync run in flight.

Read by `allegro-backup quiet` (with the worker's consumer lag from Kafka) before a rebuild, a
comparison or a benchmark reading, so that nothing is still on its way into PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_BUSY_TOKENS = text(
    """
SELECT id,
    CASE
        WHEN backfill_completed_at IS NULL THEN 'backfilling'
        WHEN sync_requested_at IS NOT NULL OR resync_requested_at IS NOT NULL
            OR reconcile_requested_at IS NOT NULL THEN 'a request is pending'
        WHEN last_error IS NOT NULL THEN 'its last sync failed'
        ELSE 'no successful journal read since ' || coalesce(last_success_at::text, 'ever')
    END AS reason
FROM user_tokens
WHERE status = 'active' AND (
    backfill_completed_at IS NULL
    OR sync_requested_at IS NOT NULL OR resync_requested_at IS NOT NULL OR reconcile_requested_at IS NOT NULL
    OR last_error IS NOT NULL
    OR last_success_at IS NULL OR last_success_at < :fresh_after)
ORDER BY id
"""
)

# Served by the partial index ix_sync_history_running.
_RUNNING_RUNS = text("SELECT count(*) FROM sync_history WHERE status = 'running'")


@dataclass(frozen=True)
class BusyToken:
    """An active token that is not caught up, and why."""

    token_id: UUID
    reason: str


async def busy_tokens(connection: AsyncConnection, *, fresh_after: datetime) -> list[BusyToken]:
    """Active tokens still backfilling, with a pending request, failing, or not read since `fresh_after`."""
    rows = await connection.execute(_BUSY_TOKENS, {"fresh_after": fresh_after})
    return [BusyToken(row.id, row.reason) for row in rows]


async def running_sync_runs(connection: AsyncConnection) -> int:
    """How many sync runs are recorded as running (their final record not stored yet)."""
    return int((await connection.execute(_RUNNING_RUNS)).scalar_one())
