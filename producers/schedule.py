"""When each token is polled: one scheduler per poller process, a due-time heap and bounded lanes.

Every owned, syncing token has an entry with a due time. When it comes, the entry joins the ready
queue; free slots take from it, at most `max_concurrent_tokens` journal polls at once and, apart from
them, `max_concurrent_walks` polls that run a walk (backfill, resync, reconcile), so a burst of links
cannot hold every slot while sellers wait for their journals. Every request still goes through the
process's share of the client id's budget (`producers.budget`), round robin by token.

Polls are coalesced into rounds: at most every `slack` seconds (`coalesce_slack`: a tenth of the
minimum interval, at most `COALESCE_SECONDS`) the scheduler releases every entry due within the next
`slack` seconds, so polls start in bursts and the process wakes a few times a second rather than once
per poll (waking an idle process costs CPU of its own, as much as a quiet poll's request on a virtual
machine: docs/PERFORMANCE.md). Between rounds, a finished poll only lets the next released one start.
A poll thereby starts up to `slack` early, never late; a woken token (sync-now, resync) starts at once.

After each poll the token's interval adapts (`Cadence`): back to the minimum when it read events,
growing while it is quiet, up to a bound. When more is due than the budget serves, the ready queue is
ordered by due time less a priority for sellers active within the recent window (their orders are the
likeliest to be waiting); a quiet seller that became due earlier than that still goes first, so
waiting ages every seller ahead and nobody starves.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from core.logging import log_context
from core.settings import PollerSettings
from producers.metrics import PollerMetrics
from producers.token_work import PollResult, TokenWork, poller_identity

log = logging.getLogger(__name__)

# Intervals are shortened by up to this fraction at random, so tokens linked together drift apart
# (never lengthened: the maximum stays a bound).
JITTER = 0.1
# A token's first interval (after its first poll in this process) is shortened by up to this fraction:
# tokens found together at start-up then spread over half their bound, instead of polling as one
# cohort, in one burst per bound, for ever after.
FIRST_JITTER = 0.5
# The longest a poll starts early to share a wake-up with others (see `coalesce_slack`).
COALESCE_SECONDS = 0.5


def coalesce_slack(minimum_interval: float) -> float:
    """Seconds by which a poll may start early to run with others: a tenth of the minimum interval,
    at most `COALESCE_SECONDS`."""
    return min(COALESCE_SECONDS, JITTER * minimum_interval)


class Cadence:
    """The journal interval policy (`POLLER__JOURNAL_*` settings), in seconds."""

    def __init__(self, settings: PollerSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - spreading polls, not cryptography
        self.minimum = settings.journal_interval_seconds
        self.recent_maximum = max(self.minimum, settings.journal_interval_recent_max_seconds)
        self.maximum = max(self.recent_maximum, settings.journal_interval_max_seconds)

    @property
    def fixed(self) -> bool:
        """True for the fixed schedule: every token every `minimum` seconds."""
        return self._settings.journal_schedule == "fixed"

    def next_interval(self, previous: float | None, *, events: int, recent: bool) -> float:
        """The interval after a poll that read `events` events; `recent` when the token's newest event
        is within the recent window. The first poll of a token (`previous` None) starts at the bound
        of its class, or at the minimum when it read events."""
        if self.fixed or events:
            return self.minimum
        cap = self.recent_maximum if recent else self.maximum
        if previous is None:
            return cap
        return min(cap, max(self.minimum, previous * self._settings.journal_interval_growth))

    def jittered(self, interval: float, *, first: bool = False) -> float:
        """`interval` shortened at random by up to `JITTER`, or by up to `FIRST_JITTER` when `first`."""
        return interval * (1.0 - (FIRST_JITTER if first else JITTER) * self._rng.random())


@dataclass(eq=False, slots=True)
class _Entry:
    work: TokenWork
    interval: float | None = None
    due: float = 0.0
    generation: int = 0
    running: bool = False
    woken: bool = False


class Scheduler:
    """Runs owned tokens' polls when due, within the lanes' sizes; `run` until cancelled."""

    def __init__(
        self,
        settings: PollerSettings,
        metrics: PollerMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.cadence = Cadence(settings, rng)
        self._entries: dict[UUID, _Entry] = {}
        self._timers: list[tuple[float, int, UUID, int]] = []
        self._ready: list[tuple[float, int, UUID, int]] = []
        self._walk_queue: deque[UUID] = deque()
        self._tasks: dict[UUID, asyncio.Task[None]] = {}
        self._polls_free = settings.max_concurrent_tokens
        self._walks_free = settings.max_concurrent_walks
        self._changed = asyncio.Event()
        self._seq = itertools.count()
        self._slack = coalesce_slack(self.cadence.minimum)
        self._next_round = 0.0  # no release before this (monotonic clock), unless a token is woken

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def token_ids(self) -> set[UUID]:
        """Every token with an entry."""
        return set(self._entries)

    def work(self, token_id: UUID) -> TokenWork | None:
        """The token's work, if it has an entry."""
        entry = self._entries.get(token_id)
        return entry.work if entry else None

    def add(self, work: TokenWork, *, delay: float = 0.0) -> None:
        """Give `work`'s token an entry, first due in `delay` seconds."""
        entry = _Entry(work)
        self._entries[work.token_id] = entry
        self._metrics.tokens_owned.set(len(self._entries))
        _owned(work.token_id, "token work started")
        self._schedule(entry, delay)

    def wake(self, token_id: UUID) -> None:
        """Poll the token now (or right after its running poll)."""
        entry = self._entries.get(token_id)
        if entry is None:
            return
        if entry.running:
            entry.woken = True
        elif entry.due > self._clock():
            self._schedule(entry, 0.0)

    async def remove(self, token_ids: Iterable[UUID]) -> None:
        """Drop these tokens' entries, cancel their running polls and wait until those have stopped."""
        tasks, removed = [], []
        for token_id in token_ids:
            if self._entries.pop(token_id, None) is not None:
                removed.append(token_id)
            task = self._tasks.pop(token_id, None)
            if task is not None:
                task.cancel()
                tasks.append(task)
        self._metrics.tokens_owned.set(len(self._entries))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for token_id in removed:
            _owned(token_id, "token work stopped")

    async def run(self) -> None:
        """Start polls as they come due; never returns (cancel it, then `remove` every token)."""
        while True:
            self._changed.clear()
            now = self._clock()
            if now >= self._next_round:
                self._release_due(now + self._slack)
                self._next_round = now + self._slack
            self._dispatch(now)
            # The next round: when the earliest timer is within `slack`, but not before this round's end.
            wake_at = max(self._next_round, self._timers[0][0] - self._slack) if self._timers else None
            timeout = None if wake_at is None else max(0.0, wake_at - now)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and the scheduler would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()

    # --- inside ----------------------------------------------------------------------------------------

    def _schedule(self, entry: _Entry, delay: float) -> None:
        entry.generation += 1
        entry.due = self._clock() + delay
        if delay <= 0:
            self._next_round = 0.0  # due now (woken, added, retried): release at once
        heapq.heappush(self._timers, (entry.due, next(self._seq), entry.work.token_id, entry.generation))
        self._changed.set()

    def _current(self, token_id: UUID, generation: int | None = None) -> _Entry | None:
        entry = self._entries.get(token_id)
        if entry is None or entry.running or (generation is not None and entry.generation != generation):
            return None
        return entry

    def _release_due(self, until: float) -> None:
        """Entries due by `until` join the ready queue, ordered by due time less the activity priority."""
        wall = datetime.now(UTC)
        priority = self._settings.journal_activity_priority_seconds
        window = self._settings.journal_recent_activity_seconds
        while self._timers and self._timers[0][0] <= until:
            due, seq, token_id, generation = heapq.heappop(self._timers)
            entry = self._current(token_id, generation)
            if entry is None:
                continue
            bonus = priority if entry.work.recently_active(wall, window) else 0.0
            heapq.heappush(self._ready, (due - bonus, seq, token_id, generation))

    def _dispatch(self, now: float) -> None:
        started = len(self._tasks)
        self._dispatch_ready(now)
        if len(self._tasks) > started:
            self._metrics.poll_rounds.inc()

    def _dispatch_ready(self, now: float) -> None:
        while self._walk_queue and self._walks_free > 0:
            entry = self._current(self._walk_queue.popleft())
            if entry is not None:
                self._start(entry, now, walk=True)
        wall = datetime.now(UTC)
        while self._ready and self._polls_free > 0:
            _key, _seq, token_id, generation = heapq.heappop(self._ready)
            entry = self._current(token_id, generation)
            if entry is None:
                continue
            if entry.work.needs_walk(wall):
                if self._walks_free > 0:
                    self._start(entry, now, walk=True)
                else:
                    entry.generation += 1  # waits in the walk queue, not in a timer
                    self._walk_queue.append(token_id)
                continue
            self._start(entry, now, walk=False)

    def _start(self, entry: _Entry, now: float, *, walk: bool) -> None:
        entry.running = True
        if walk:
            self._walks_free -= 1
        else:
            self._polls_free -= 1
        self._metrics.poll_delay.observe(max(0.0, now - entry.due))
        token_id = entry.work.token_id
        task = asyncio.create_task(self._poll(entry, walk=walk), name=f"poll-{token_id}")
        self._tasks[token_id] = task

    async def _poll(self, entry: _Entry, *, walk: bool) -> None:
        token_id = entry.work.token_id
        try:
            result = await entry.work.poll(walks_allowed=walk)
        except Exception:  # a defect: logged; the token is polled again later
            log.exception("poll crashed", extra={"token_id": str(token_id)})
            result = PollResult(failed=True)
        finally:
            entry.running = False
            if walk:
                self._walks_free += 1
            else:
                self._polls_free += 1
            if self._tasks.get(token_id) is asyncio.current_task():
                del self._tasks[token_id]
            self._changed.set()
        if self._entries.get(token_id) is not entry:
            return  # removed meanwhile
        self._after(entry, result)

    def _after(self, entry: _Entry, result: PollResult) -> None:
        """Count the poll and schedule the next one."""
        outcome = (
            "stopped"
            if result.stop
            else "walk_wanted"
            if result.wants_walk
            else "failed"
            if result.failed
            else "events"
            if result.events
            else "quiet"
        )
        self._metrics.polls.labels(outcome=outcome).inc()
        token_id = entry.work.token_id
        if result.stop:
            del self._entries[token_id]
            self._metrics.tokens_owned.set(len(self._entries))
            _owned(token_id, "token work stopped")
            return
        if result.wants_walk:
            entry.generation += 1
            self._walk_queue.append(token_id)
            self._changed.set()
            return
        recent = entry.work.recently_active(datetime.now(UTC), self._settings.journal_recent_activity_seconds)
        first = entry.interval is None
        if result.failed:
            entry.interval = self.cadence.minimum
        else:
            entry.interval = self.cadence.next_interval(entry.interval, events=result.events, recent=recent)
        delay = self.cadence.jittered(entry.interval, first=first)
        if result.retry_at is not None:
            delay = max(0.0, (result.retry_at - datetime.now(UTC)).total_seconds())
        if entry.woken:
            entry.woken, delay = False, 0.0
        self._schedule(entry, delay)


def _owned(token_id: UUID, message: str) -> None:
    """The lines that show which process polled a token when (one when its entry is added, one when it
    is gone and its last poll has ended)."""
    with log_context(token_id=str(token_id), poller=poller_identity()):
        log.info(message)
