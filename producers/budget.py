"""The process's share of the Allegro request budget, resized when the group hands it more or fewer tokens.

Allegro's budget is per client id, shared by every poller process. Each process holds a share equal to
the fraction of token partitions the consumer group assigned it, so the processes together stay
within the configured budget without talking to each other.

A rebalance moves share between processes whose windows still hold what they spent. A resized
process keeps its own grants in its window, so one that lost share waits until its spending fits the
new share; one that gained share counts the gained part as already spent evenly over the last window
(what its previous owner's paced polls would have spent), so it takes the new share up gradually over
one window instead of at once. A poller starts with no share (`resize(0)`) and the first assignment
is such a gain: the processes together stay within the budget through starts and rebalances.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from allegro_api import GovernorStats, RateGovernor


class SharedBudget(RateGovernor):
    """A RateGovernor whose budget can change: it forwards to an inner governor rebuilt on resize."""

    def __init__(self, requests_per_minute: int, *, window_seconds: float = 60.0) -> None:
        super().__init__(max(1, requests_per_minute), window_seconds=window_seconds)
        self._full_budget = max(1, requests_per_minute)
        self._window_seconds = window_seconds
        self._inner = RateGovernor(self._full_budget, window_seconds=window_seconds)
        self._share = 1.0

    @property
    def budget(self) -> int:
        """Requests per window this process may make now."""
        return self._inner.stats().budget

    @property
    def share(self) -> float:
        """The fraction of the client id's budget this process holds."""
        return self._share

    def resize(self, share: float) -> None:
        """Hold `share` (0..1) of the full budget from now on; a pause in force carries over."""
        share = min(1.0, max(0.0, share))
        if share == self._share:
            return
        gained = max(0.0, share - self._share) * self._full_budget
        self._share = share
        previous = self._inner
        paused_until = previous.paused_until
        # Callers already queued on the old governor are served by it; new callers use the new one.
        self._inner = RateGovernor(
            max(1, int(self._full_budget * share)), window_seconds=self._window_seconds
        )
        now, window, count = time.monotonic(), self._window_seconds, int(gained)
        assumed = [now - window + (i + 1) * window / (count + 1) for i in range(count)]
        self._inner.assume_grants([*previous.recent_grants(), *assumed])
        if paused_until > time.monotonic():
            self._inner.pause_until(paused_until)

    async def acquire(self, key: Hashable) -> None:
        """Wait for one request slot on behalf of `key`."""
        await self._inner.acquire(key)

    def pause_until(self, deadline: float) -> None:
        """Grant nothing before `deadline` (monotonic clock)."""
        self._inner.pause_until(deadline)

    @property
    def paused_until(self) -> float:
        """The current pause deadline."""
        return self._inner.paused_until

    def stats(self) -> GovernorStats:
        """Counters of the governor in force."""
        return self._inner.stats()
