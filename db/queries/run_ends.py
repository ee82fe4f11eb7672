"""Closing sync runs that nobody ended: the runs of a dead or cut-off poller, as status `abandoned`.

A run's rows come from its lifecycle records (`db.queries.sync_history`); a poller killed mid-run never
sends the final one. Two writers close such runs, both idempotent:
- the poller that takes a token over closes every run of that token still `running`: the group gave it
  the token only after the previous owner stopped (or its session expired), so none of them is alive;
- a periodic sweep closes runs silent for longer than a lease, whoever owned them (a token nobody took
  over, a `started` record that arrived after the takeover).

Abandoning is a presumption: a final record that arrives later still replaces it (see the upsert).
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_CLOSE = """
UPDATE sync_history SET status = 'abandoned', finished_at = now(), updated_at = now(),
    error = coalesce(error, :reason)
WHERE status = 'running' AND {condition}
"""

_CLOSE_OF_TOKEN = text(_CLOSE.format(condition="token_id = :token_id"))
_CLOSE_SILENT = text(_CLOSE.format(condition="updated_at < now() - make_interval(secs => :lease_seconds)"))


async def abandon_runs_of_token(session: AsyncSession, token_id: UUID, *, reason: str) -> int:
    """Close the token's `running` runs as `abandoned`; returns how many. Commits nothing itself."""
    result = await session.execute(_CLOSE_OF_TOKEN, {"token_id": token_id, "reason": reason})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def abandon_silent_runs(session: AsyncSession, *, lease: timedelta, reason: str) -> int:
    """Close runs whose last record is older than `lease` as `abandoned`; returns how many."""
    result = await session.execute(_CLOSE_SILENT, {"lease_seconds": lease.total_seconds(), "reason": reason})
    return int(result.rowcount)  # type: ignore[attr-defined]
