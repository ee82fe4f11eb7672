"""The poller process: group membership, a scheduler that starts token work, link completion.

The scheduler scans token rows every `link_poll_seconds`: active (and access_denied, which wait for
their next attempt) tokens of owned partitions get a worker (woken early by sync-now or resync
requests), due pending links get one poll each. Rebalances and the scan share one lock, so a revoked
partition's token can never be started again after its work was stopped.

Outages: the poller never exits for want of PostgreSQL or Kafka. Joining the group waits (with backoff)
until a broker answers; a scan that cannot read the token rows is logged and retried with backoff while
the running token work retries its own cycles; `poller_dependency_up` is 0 meanwhile. Every
`RUN_SWEEP_SECONDS` a scan also closes runs whose records stopped coming (`db.queries.run_ends`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from core.outages import database_unreachable
from core.topics import POLLER_TOKEN_PARTITIONS
from core.waiting import backoff_delay, retry_until_available
from db.queries import run_ends, token_sync
from producers.budget import SharedBudget
from producers.linking import complete_link
from producers.membership import TokenPartitionListener, keep_membership, token_partition
from producers.sync import SyncContext
from producers.worker import run_token

log = logging.getLogger(__name__)

# What a scan may meet: while PostgreSQL is away the driver's errors come wrapped in SQLAlchemy's, a
# refused connection as a plain OSError. None of them ends the process.
DATABASE_UNAVAILABLE = (SQLAlchemyError, OSError)
RUN_SWEEP_SECONDS = 60.0
SILENT_RUN = "abandoned: no record from its poller for longer than the run lease"


class Poller:
    """Owns the token work of the partitions the group assigned to this process."""

    def __init__(self, context: SyncContext, consumer: AIOKafkaConsumer, tokens_topic: str) -> None:
        self._ctx = context
        self._consumer = consumer
        self._topic = tokens_topic
        self._assigned: set[int] = set()
        self._partitions = POLLER_TOKEN_PARTITIONS
        self._work: dict[UUID, asyncio.Task[Any]] = {}
        self._wakes: dict[UUID, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._next_sweep = 0.0

    @property
    def assigned(self) -> set[int]:
        """The tokens-topic partitions this process owns now."""
        return set(self._assigned)

    async def run(self, stop: asyncio.Event) -> None:
        """Join the group, schedule until `stop` is set, then stop all work and leave the group."""
        self._consumer.subscribe([self._topic], listener=TokenPartitionListener(self._revoke, self._assign))
        membership: asyncio.Task[None] | None = None
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
            failures = 0
            while not stop.is_set():
                if membership.done():
                    membership = await self._restart_membership(membership)
                failures = await self._scan_or_wait_out(failures)
                pause = backoff_delay(failures) if failures else self._ctx.settings.link_poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
        finally:
            if membership is not None:
                membership.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await membership
            async with self._lock:
                await self._stop_work(set(self._work))
                self._assigned = set()
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
            doomed = {t for t in self._work if token_partition(t, self._partitions) in partitions}
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
        log.info("partitions assigned", extra={"partitions": sorted(partitions)})

    def _resize_budget(self) -> None:
        governor = self._ctx.access.governor
        if isinstance(governor, SharedBudget):
            governor.resize(len(self._assigned) / self._partitions)
            self._ctx.metrics.budget_limit.set(governor.budget)

    async def _stop_work(self, token_ids: set[UUID]) -> None:
        """Cancel the work of these tokens and wait until it has really stopped."""
        tasks = [self._work.pop(token_id) for token_id in token_ids if token_id in self._work]
        for token_id in token_ids:
            self._wakes.pop(token_id, None)
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
        """Start work for owned tokens that need it."""
        async with self._ctx.autocommit() as session:
            tokens = await token_sync.list_scheduled_tokens(session)
        now = datetime.now(UTC)
        async with self._lock:
            for token in tokens:
                if token_partition(token.id, self._partitions) not in self._assigned:
                    continue
                running = self._work.get(token.id)
                if running is not None and not running.done():
                    if token.sync_requested_at or token.resync_requested_at:
                        self._wakes[token.id].set()
                    continue
                if token.status in token_sync.SYNCING_STATUSES:
                    wake = asyncio.Event()
                    self._wakes[token.id] = wake
                    self._start(token.id, run_token(self._ctx, token.id, wake))
                elif token.device_next_poll_at is None or token.device_next_poll_at <= now:
                    self._wakes[token.id] = asyncio.Event()
                    self._start(token.id, complete_link(self._ctx.access, token.id))
        stats = self._ctx.access.governor.stats()
        self._ctx.metrics.budget_used.set(stats.in_window)

    def _start(self, token_id: UUID, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work, name=f"token-{token_id}")
        task.add_done_callback(_log_crash)
        self._work[token_id] = task


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def _log_crash(task: asyncio.Task[Any]) -> None:
    """Token work that ends with an unexpected error is logged; the next scan starts it again."""
    if not task.cancelled() and task.exception() is not None:
        log.error("token work crashed: %s", task.get_name(), exc_info=task.exception())
