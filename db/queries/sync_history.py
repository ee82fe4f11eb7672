"""Write-side SQL of `sync_history`: one row per sync run, upserted from its lifecycle records.

Records of one run may arrive late or twice (at-least-once delivery), so the upsert is order-safe: a final
record (finished / failed) wins over anything running, counters of running records only grow, and
nothing running ever touches a run that is already final. `abandoned` (`db.queries.run_ends`) is a
presumption, not a record: a final record that arrives after it still ends the run as it really ended.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from core.contract import SyncRunRecord
from core.states import SyncStatus

_STATUS_BY_PHASE = {
    "started": SyncStatus.RUNNING,
    "progress": SyncStatus.RUNNING,
    "finished": SyncStatus.FINISHED,
    "failed": SyncStatus.FAILED,
}

_UPSERT_SYNC_RUN = """
INSERT INTO sync_history AS h (id, token_id, user_id, kind, status, started_at, finished_at, events_read,
    orders_fetched, orders_changed, requests_made, cursor_from, cursor_to, error, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status,
    finished_at = EXCLUDED.finished_at,
    events_read = CASE WHEN EXCLUDED.status = 'running'
        THEN greatest(h.events_read, EXCLUDED.events_read) ELSE EXCLUDED.events_read END,
    orders_fetched = CASE WHEN EXCLUDED.status = 'running'
        THEN greatest(h.orders_fetched, EXCLUDED.orders_fetched) ELSE EXCLUDED.orders_fetched END,
    orders_changed = CASE WHEN EXCLUDED.status = 'running'
        THEN greatest(h.orders_changed, EXCLUDED.orders_changed) ELSE EXCLUDED.orders_changed END,
    requests_made = CASE WHEN EXCLUDED.status = 'running'
        THEN greatest(h.requests_made, EXCLUDED.requests_made) ELSE EXCLUDED.requests_made END,
    cursor_from = coalesce(h.cursor_from, EXCLUDED.cursor_from),
    cursor_to = coalesce(EXCLUDED.cursor_to, h.cursor_to),
    error = coalesce(EXCLUDED.error, h.error),
    updated_at = now()
-- a final run is never reopened nor rewritten by a late or repeated record; an abandoned one only by its
-- real end
WHERE h.status = 'running' OR (h.status = 'abandoned' AND EXCLUDED.status <> 'running')
"""


def status_of(record: SyncRunRecord) -> str:
    """The sync_history status a lifecycle record stands for."""
    return _STATUS_BY_PHASE[record.phase]


async def upsert_sync_runs(conn: asyncpg.Connection, records: Sequence[SyncRunRecord]) -> None:
    """Apply lifecycle records in the order given (callers keep Kafka order)."""
    await conn.executemany(
        _UPSERT_SYNC_RUN,
        [
            (
                r.sync_run_id,
                r.token_id,
                r.user_id,
                r.kind,
                status_of(r),
                r.started_at,
                (r.finished_at or r.at) if r.phase in ("finished", "failed") else None,
                r.events_read,
                r.orders_fetched,
                r.orders_changed,
                r.requests_made,
                r.cursor_from,
                r.cursor_to,
                r.error,
            )
            for r in records
        ],
    )
