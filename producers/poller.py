"""The poller process: group membership, a scan of the token rows, the scheduler, link completion.

The scan runs every `link_poll_seconds` and reads only the rows changed since the last scan (every
`full_scan_seconds`, all scheduled rows): active (and access_denied, which wait for their next
attempt) tokens of owned partitions get an entry in the scheduler (`producers.schedule`), polled
at once on a sync-now or resync request; a changed row is read again before its next poll; due
pending links get one poll each. Rebalances and the scan share one lock, so a revoked partition's
token can never be scheduled again after its work was stopped. Journal-read times are written for
all tokens at once every `poll_flush_seconds`.

Outages: the poller never exits for want of PostgreSQL or Kafka. Joining the group waits (with backoff)
until a broker answers; a scan that cannot read the token rows is logged and retried with backoff while
the running token work retries its own cycles; `poller_dependency_up` is 0 meanwhile. Every
`RUN_SWEEP_SECONDS` a scan also closes runs whose records stopped coming (`db.queries.run_ends`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from core.outages import database_unreachable
from core.topics import POLLER_TOKEN_PARTITIONS
from core.waiting import backoff_delay, retry_until_available
from db.queries import run_ends, token_polls, token_sync
from db.queries.token_sync import TokenSchedule
from producers.budget import SharedBudget
from producers.linking import complete_link
from producers.membership import TokenPartitionListener, keep_membership, token_partition
from producers.schedule import Scheduler
from producers.sync import SyncContext
from producers.token_work import PollLedger, TokenWork

log = logging.getLogger(__name__)

# What a scan may meet: while PostgreSQL is away the driver's errors come wrapped in SQLAlchemy's, a
# refused connection as a plain OSError. None of them ends the process.
DATABASE_UNAVAILABLE = (SQLAlchemyError, OSError)
RUN_SWEEP_SECONDS = 60.0
SILENT_RUN = "abandoned: no record from its poller for longer than the run lease"
# A scan between full scans reads rows changed since the previous scan began, less this margin: a
# transaction's now() is its start, so a row written by a long transaction shows an earlier time.
SCAN_OVERLAP = timedelta(seconds=10)
# More tokens than this appearing in one scan (a start, a rebalance) have their first polls spread out
# (over this long, or the longest journal interval if shorter).
SPREAD_ABOVE = 32
SPREAD_SECONDS = 30.0


class Poller:
    """Owns the token work of the partitions the group assigned to this process."""

    def __init__(self, context: SyncContext, consumer: AIOKafkaConsumer, tokens_topic: str) -> None:
        self._ctx = context
        self._consumer = consumer
        self._topic = tokens_topic
        self._assigned: set[int] = set()
        self._partitions = POLLER_TOKEN_PARTITIONS
        self._links: dict[UUID, asyncio.Task[Any]] = {}
        self._ledger = PollLedger()
        self._scheduler = Scheduler(context.settings, context.metrics)
        self._lock = asyncio.Lock()
        self._next_sweep = 0.0
        self._next_full_scan = 0.0
        self._next_flush = 0.0
        self._scanned_since: datetime | None = None
        self._rng = random.Random()  # noqa: S311 - spreading polls, not cryptography

    @property
    def scheduler(self) -> Scheduler:
        """The process's scheduler."""
        return self._scheduler

    @property
    def assigned(self) -> set[int]:
        """The tokens-topic partitions this process owns now."""
        return set(self._assigned)

    async def run(self, stop: asyncio.Event) -> None:
        """Join the group, schedule until `stop` is set, then stop all work and leave the group."""
        self._consumer.subscribe([self._topic], listener=TokenPartitionListener(self._revoke, self._assign))
        governor = self._ctx.access.governor
        if isinstance(governor, SharedBudget):
            governor.resize(0.0)  # no share until the group assigns partitions (producers.budget)
        membership: asyncio.Task[None] | None = None
        scheduling: asyncio.Task[None] | None = None
        try:
            # Raises StopRequested when stopped before any broker answered.
            await retry_until_available(
                self._consumer.start,
                what="joining the poller group",
                stop=stop,
                on_failure=lambda _: self._up("kafka", False),
            )
            self._up("kafka", True)
            membership = asyncio.create_task(keep_membership(self._consumer), name="poller-membership")
            scheduling = asyncio.create_task(self._scheduler.run(), name="poller-scheduler")
            failures = 0
            while not stop.is_set():
                if membership.done():
                    membership = await self._restart_membership(membership)
                failures = await self._scan_or_wait_out(failures)
                if scheduling.done():
                    scheduling.result()  # a defect ended it: raise it here
                    raise RuntimeError("the scheduler ended")
                pause = backoff_delay(failures) if failures else self._ctx.settings.link_poll_seconds
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await stop.wait()
        finally:
            if membership is not None:
                membership.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await membership
            async with self._lock:
                await self._stop_work(self._scheduler.token_ids() | set(self._links))
                self._assigned = set()
            if scheduling is not None:
                scheduling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scheduling
            await self._flush_polls(final=True)
            await self._consumer.stop()  # leaves the group, so the others take over at once
            log.info("poller stopped")

    async def _restart_membership(self, ended: asyncio.Task[None]) -> asyncio.Task[None]:
        """Poll again after the membership loop died of a Kafka error (the consumer's coordinator, not
        this loop, keeps the group and calls the listener on a real loss). Any other error is a defect
        and ends the run: a dead membership loop must not leave us polling unowned tokens."""
        error = ended.exception()
        if not isinstance(error, KafkaError):
            ended.result()
            raise RuntimeError("the membership loop ended")
        log.warning("group membership poll failed (%s: %s); polling again", type(error).__name__, error)
        await asyncio.sleep(1)
        return asyncio.create_task(keep_membership(self._consumer), name="poller-membership")

    async def _revoke(self, partitions: set[int]) -> None:
        async with self._lock:
            self._assigned -= partitions
            owned = self._scheduler.token_ids() | set(self._links)
            doomed = {t for t in owned if token_partition(t, self._partitions) in partitions}
            await self._stop_work(doomed)
            self._resize_budget()
        log.info("partitions revoked", extra={"partitions": sorted(partitions), "stopped": len(doomed)})

    async def _assign(self, partitions: set[int]) -> None:
        async with self._lock:
            known = self._consumer.partitions_for_topic(self._topic)
            if known:
                self._partitions = len(known)
            self._assigned = set(partitions)
            self._resize_budget()
            self._next_full_scan = 0.0  # the new partitions' tokens: read them all
        log.info("partitions assigned", extra={"partitions": sorted(partitions)})

    def _resize_budget(self) -> None:
        governor = self._ctx.access.governor
        if isinstance(governor, SharedBudget):
            governor.resize(len(self._assigned) / self._partitions)
            self._ctx.metrics.budget_limit.set(governor.budget)

    async def _stop_work(self, token_ids: set[UUID]) -> None:
        """Cancel the work of these tokens and wait until it has really stopped."""
        await self._scheduler.remove(token_ids)
        tasks = [self._links.pop(token_id) for token_id in token_ids if token_id in self._links]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _up(self, dependency: str, up: bool) -> None:
        self._ctx.metrics.dependency_up.labels(dependency=dependency).set(1 if up else 0)

    async def _scan_or_wait_out(self, failures: int) -> int:
        """Scan once; returns the number of scans in a row that failed for want of PostgreSQL."""
        try:
            await self._scan()
            await self._flush_polls()
            if self._ctx.settings.run_lease_seconds and time.monotonic() >= self._next_sweep:
                await self._sweep_silent_runs()
        except DATABASE_UNAVAILABLE as exc:
            if database_unreachable(exc):
                self._up("postgresql", False)
                log.warning(
                    "scan failed, PostgreSQL unavailable (%s: %s)", type(exc).__name__, _first_line(exc)
                )
            else:  # a defect, not an outage: loud, but the process goes on scheduling what it can
                log.exception("scan failed")
            return failures + 1
        if failures:
            log.info("scan succeeded again after %d failures", failures)
        self._up("postgresql", True)
        return 0

    async def _sweep_silent_runs(self) -> None:
        lease = timedelta(seconds=self._ctx.settings.run_lease_seconds)
        async with self._ctx.autocommit() as session:
            closed = await run_ends.abandon_silent_runs(session, lease=lease, reason=SILENT_RUN)
        self._next_sweep = time.monotonic() + RUN_SWEEP_SECONDS
        if closed:
            self._ctx.metrics.runs_abandoned.inc(closed)
            log.warning(
                "closed %d sync runs silent for over %.0fs as abandoned", closed, lease.total_seconds()
            )

    async def _scan(self) -> None:
        """Schedule owned tokens that sync, mark changed rows, wake requested ones, poll due links."""
        since = self._scanned_since
        full = since is None or time.monotonic() >= self._next_full_scan
        started = datetime.now(UTC)
        async with self._ctx.autocommit() as session:
            if since is None or full:
                tokens = await token_sync.list_scheduled_tokens(session)
            else:
                tokens = await token_sync.list_changed_tokens(session, since=since - SCAN_OVERLAP)
        now = datetime.now(UTC)
        async with self._lock:
            owned = [t for t in tokens if token_partition(t.id, self._partitions) in self._assigned]
            new = [
                t for t in owned if t.status in token_sync.SYNCING_STATUSES and t.id not in self._scheduler
            ]
            spread = 0.0
            if len(new) > SPREAD_ABOVE:
                spread = min(SPREAD_SECONDS, self._ctx.settings.longest_journal_interval())
            for token in owned:
                self._scan_one(token, now, spread)
            if full:
                # Rows gone from the scheduled set (deleted, or changed while a scan missed them): their
                # next poll reads the row and ends the work.
                seen = {t.id for t in owned}
                for token_id in self._scheduler.token_ids() - seen:
                    self._wake_changed(token_id)
        self._scanned_since = started
        if full:
            self._next_full_scan = time.monotonic() + self._ctx.settings.full_scan_seconds
        stats = self._ctx.access.governor.stats()
        self._ctx.metrics.budget_used.set(stats.in_window)

    def _scan_one(self, token: TokenSchedule, now: datetime, spread: float) -> None:
        link = self._links.get(token.id)
        if link is not None and link.done():
            del self._links[token.id]
            link = None
        work = self._scheduler.work(token.id)
        if work is not None:
            work.changed(token.updated_at)
            if token.status not in token_sync.SYNCING_STATUSES:
                self._scheduler.wake(token.id)  # its next poll reads the row and ends the work
                return
            request = max(filter(None, (token.sync_requested_at, token.resync_requested_at)), default=None)
            if request is not None and request != work.woken_for:
                work.woken_for = request
                self._scheduler.wake(token.id)
            return
        if token.status in token_sync.SYNCING_STATUSES:
            if link is not None:
                return  # the link's own poll is still finishing
            work = TokenWork(self._ctx, token.id, self._ledger)
            self._scheduler.add(work, delay=self._rng.uniform(0.0, spread))
        elif token.status == "pending" and link is None:
            if token.device_next_poll_at is None or token.device_next_poll_at <= now:
                self._start_link(token.id)

    def _wake_changed(self, token_id: UUID) -> None:
        work = self._scheduler.work(token_id)
        if work is not None:
            work.stale = True
            self._scheduler.wake(token_id)

    async def _flush_polls(self, *, final: bool = False) -> None:
        """Write the journal-read times collected since the last flush (one statement)."""
        if not final and time.monotonic() < self._next_flush:
            return
        self._next_flush = time.monotonic() + self._ctx.settings.poll_flush_seconds
        polls = self._ledger.take()
        if not polls:
            return
        try:
            async with self._ctx.autocommit() as session:
                await token_polls.record_polls(session, polls)
        except DATABASE_UNAVAILABLE:
            self._ledger.restore(polls)
            if not final:
                raise
            log.warning("could not write %d journal-read times at shutdown", len(polls))
            return
        self._ctx.metrics.polls_flushed.inc(len(polls))

    def _start_link(self, token_id: UUID) -> None:
        task = asyncio.create_task(complete_link(self._ctx.access, token_id), name=f"link-{token_id}")
        task.add_done_callback(_log_crash)
        self._links[token_id] = task


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def _log_crash(task: asyncio.Task[Any]) -> None:
    """Token work that ends with an unexpected error is logged; the next scan starts it again."""
    if not task.cancelled() and task.exception() is not None:
        log.error("token work crashed: %s", task.get_name(), exc_info=task.exception())
