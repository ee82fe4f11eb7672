"""Sync runs: counts kept while a run goes on, and its lifecycle records on `allegro.sync-runs`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from core.contract import SyncKind, SyncPhase, SyncRunRecord
from core.redaction import scrub
from producers.access import RequestCounter
from producers.publisher import PollerPublisher

log = logging.getLogger(__name__)

# Long runs (backfills) report progress at most this often.
PROGRESS_EVERY_SECONDS = 10.0
# A cancelled run's final record is sent while the poller waits for the token's work to stop (a
# rebalance, a shutdown): bounded, so a broker that is down cannot hold the rebalance. A record not sent
# in time leaves the run to the takeover or the lease sweep (`db.queries.run_ends`).
CANCEL_REPORT_SECONDS = 3.0
CANCELLED = "cancelled: the poller stopped this token's work (rebalance or shutdown)"


@dataclass
class SyncRun:
    """One run of one kind for one token."""

    token_id: UUID
    user_id: str
    kind: SyncKind
    publisher: PollerPublisher
    cursor_from: str | None = None
    cursor_to: str | None = None
    events_read: int = 0
    orders_fetched: int = 0
    orders_changed: int = 0
    note: str | None = None
    requests: RequestCounter = field(default_factory=RequestCounter)
    id: UUID = field(default_factory=uuid.uuid4)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: bool = False
    _last_progress: float = field(default_factory=time.monotonic)

    @property
    def did_work(self) -> bool:
        """True once the run read an event, fetched or published a form, or made more than the one
        request of a quiet journal read (a retried form, a 429 waited out)."""
        return bool(self.events_read or self.orders_fetched or self.orders_changed or self.requests.count > 1)

    async def start(self) -> None:
        """Publish the `started` record, once."""
        if not self.started:
            self.started = True
            await self.report("started")

    def record(self, phase: SyncPhase, *, error: str | None = None) -> SyncRunRecord:
        """The run as a sync-run record in `phase`."""
        now = datetime.now(UTC)
        return SyncRunRecord(
            sync_run_id=self.id,
            token_id=self.token_id,
            user_id=self.user_id,
            kind=self.kind,
            phase=phase,
            at=now,
            started_at=self.started_at,
            finished_at=now if phase in ("finished", "failed") else None,
            events_read=self.events_read,
            orders_fetched=self.orders_fetched,
            orders_changed=self.orders_changed,
            requests_made=self.requests.count,
            cursor_from=self.cursor_from,
            cursor_to=self.cursor_to,
            error=_clip(error or self.note),
        )

    async def report(self, phase: SyncPhase, *, error: str | None = None) -> None:
        """Publish a lifecycle record; a record that cannot be sent is logged, never fatal to the sync."""
        record = self.record(phase, error=error)
        try:
            await self.publisher.publish_sync_run(record)
        except Exception:
            log.warning("could not publish sync-run record (%s)", phase, exc_info=True)

    async def report_cancelled(self) -> None:
        """Publish the `failed` record of a run stopped from outside, waiting at most a few seconds."""
        try:
            async with asyncio.timeout(CANCEL_REPORT_SECONDS):
                await self.report("failed", error=CANCELLED)
        except TimeoutError:
            log.warning("cancelled run's record not acknowledged in %.0fs", CANCEL_REPORT_SECONDS)

    async def maybe_report_progress(self) -> None:
        """Publish a progress record when the last one is old enough."""
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = time.monotonic()
            await self.report("progress")


def _clip(text: str | None) -> str | None:
    """Errors lose any secret-shaped string (they reach Kafka and sync_history) and fit the record's
    4,000 characters."""
    return scrub(text)[:4000] if text else None
