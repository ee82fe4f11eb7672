"""A request budget per Allegro client id, shared fairly between the tokens that use it.

Allegro allows 9,000 requests a minute per client id, shared by every seller the app serves, and
blocks the whole client id for a minute when it is exceeded. The governor keeps a sliding window of
grant times, so no window of `window_seconds` ever holds more than `requests_per_window` grants.

Fairness: when the budget is contended, callers queue per key (a token id) and keys are served round
robin, one grant each in turn. A big seller's backfill with a hundred waiters therefore gets one grant
per round, exactly like another seller's single journal poll, and cannot starve it.

The budget is per process: several poller instances sharing one client id should each be given a
share of it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

# Below Allegro's 9,000/min, leaving headroom for clocks that do not agree on where a minute starts.
DEFAULT_REQUESTS_PER_MINUTE = 8000


@dataclass(frozen=True, slots=True)
class GovernorStats:
    """Counters for metrics."""

    granted: int
    waited: int
    wait_seconds: float
    pauses: int
    in_window: int
    waiting: int
    budget: int


class RateGovernor:
    """Grants request slots within a sliding-window budget, round robin across keys when contended."""

    def __init__(
        self,
        requests_per_window: int = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_window < 1 or window_seconds <= 0:
            raise ValueError("the budget needs at least one request in a positive window")
        self._budget = requests_per_window
        self._window = window_seconds
        self._clock = clock
        self._granted_at: deque[float] = deque()
        # Insertion order is the round-robin ring: the key served last moves to the end.
        self._queues: OrderedDict[Hashable, deque[asyncio.Future[None]]] = OrderedDict()
        self._paused_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._granted = 0
        self._waited = 0
        self._wait_seconds = 0.0
        self._pauses = 0

    async def acquire(self, key: Hashable) -> None:
        """Wait for one request slot on behalf of `key` (a token id)."""
        now = self._clock()
        if not self._queues and now >= self._paused_until and self._has_room(now):
            self._grant(now)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, deque()).append(future)
        self._waited += 1
        started = now
        try:
            self._dispatch()
            await future
        except asyncio.CancelledError:
            self._forget(key, future)
            raise
        finally:
            self._wait_seconds += self._clock() - started

    def pause_until(self, deadline: float) -> None:
        """Grant nothing to any key before `deadline` (same clock as the governor, monotonic by default)."""
        if deadline > self._paused_until:
            self._paused_until = deadline
            self._pauses += 1
        self._dispatch()

    def pause_for(self, seconds: float) -> None:
        """Pause every key for `seconds` from now (on 429: Allegro blocks the whole client id)."""
        self.pause_until(self._clock() + seconds)

    @property
    def paused_until(self) -> float:
        """The current pause deadline (in the past when not paused)."""
        return self._paused_until

    def stats(self) -> GovernorStats:
        """A snapshot of the counters."""
        self._expire(self._clock())
        return GovernorStats(
            granted=self._granted,
            waited=self._waited,
            wait_seconds=self._wait_seconds,
            pauses=self._pauses,
            in_window=len(self._granted_at),
            waiting=sum(len(queue) for queue in self._queues.values()),
            budget=self._budget,
        )

    def recent_grants(self) -> list[float]:
        """Times (governor clock) of the grants still inside the window, oldest first."""
        self._expire(self._clock())
        return list(self._granted_at)

    def assume_grants(self, times: Iterable[float]) -> None:
        """Count grants made elsewhere at `times` (governor clock) as this governor's own: a governor
        that takes over a budget share keeps within what its predecessors already spent."""
        merged = sorted([*self._granted_at, *times])
        self._granted_at = deque(merged)
        self._expire(self._clock())
        self._dispatch()

    def _expire(self, now: float) -> None:
        """Drop grants that left the window."""
        horizon = now - self._window
        while self._granted_at and self._granted_at[0] <= horizon:
            self._granted_at.popleft()

    def _has_room(self, now: float) -> bool:
        """True when one more grant keeps the window within budget."""
        self._expire(now)
        return len(self._granted_at) < self._budget

    def _grant(self, now: float) -> None:
        """Record one grant."""
        self._granted_at.append(now)
        self._granted += 1

    def _dispatch(self) -> None:
        """Hand out every slot available now, one key at a time; arm a timer for the next free slot."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._clock()
        while self._queues:
            if now < self._paused_until:
                self._wake_at(self._paused_until)
                return
            if not self._has_room(now):
                self._wake_at(self._granted_at[0] + self._window)
                return
            key, queue = self._queues.popitem(last=False)
            future = queue.popleft()
            if queue:
                self._queues[key] = queue
            if future.done():  # cancelled while queued; its slot goes to the next key
                continue
            self._grant(now)
            future.set_result(None)

    def _wake_at(self, deadline: float) -> None:
        """Run the dispatcher again at `deadline`."""
        delay = max(0.0, deadline - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._dispatch)

    def _forget(self, key: Hashable, future: asyncio.Future[None]) -> None:
        """Remove a cancelled waiter so that its queue does not keep a dead entry."""
        queue = self._queues.get(key)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._queues[key]
