"""The poller's journal-read times, written for many tokens in one statement.

A quiet read (no event) writes nothing on its own: the poller collects the times and writes them here
every few seconds. The statement leaves `updated_at` alone: the poller's scan takes a changed
`updated_at` for a change made by someone else (a request, an unlink) and reads the row again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_RECORD_POLLS = text(
    """
UPDATE user_tokens AS t SET
    last_polled_at = greatest(t.last_polled_at, v.at),
    last_sync_at = CASE WHEN v.ok THEN greatest(t.last_sync_at, v.at) ELSE t.last_sync_at END,
    last_success_at = CASE WHEN v.ok THEN greatest(t.last_success_at, v.at) ELSE t.last_success_at END
FROM unnest(CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[]), CAST(:oks AS boolean[])) AS v(id, at, ok)
WHERE t.id = v.id
"""
)


@dataclass(frozen=True, slots=True)
class Poll:
    """One journal read of one token: when, and whether it succeeded."""

    token_id: UUID
    at: datetime
    succeeded: bool


async def record_polls(session: AsyncSession, polls: Sequence[Poll]) -> None:
    """Write each token's last read time (and, for reads that worked, its last sync and success times);
    times only ever move forward. One statement whatever the count."""
    if not polls:
        return
    await session.execute(
        _RECORD_POLLS,
        {
            "ids": [poll.token_id for poll in polls],
            "ats": [poll.at for poll in polls],
            "oks": [poll.succeeded for poll in polls],
        },
    )
