"""The batch retry loop: transient and unexpected failures are retried, a stopping worker leaves the batch."""

from __future__ import annotations

import asyncio

import pytest

from processors.retry import run_until_done


class Failing:
    """An action that fails `times` times, then returns "done"."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise RuntimeError("not yet")
        return "done"


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def test_an_unexpected_error_is_retried_until_the_action_succeeds() -> None:
    action = Failing(times=5)
    assert await run_until_done(action, what="test batch", sleep=no_sleep) == "done"
    assert action.calls == 6


async def test_a_stopping_worker_leaves_a_failing_batch_unacknowledged() -> None:
    # Faust stops an agent by waiting for its batch; retrying a permanent error would hold the stop.
    action = Failing(times=1_000)
    stopping = False

    async def sleep_then_stop(_: float) -> None:
        nonlocal stopping
        stopping = action.calls >= 3

    with pytest.raises(asyncio.CancelledError):
        await run_until_done(action, what="test batch", sleep=sleep_then_stop, stopping=lambda: stopping)
    assert action.calls == 3
