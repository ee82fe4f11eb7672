"""The batch retry loop: transient and unexpected failures are retried, a stopping worker leaves the batch."""

from __future__ import annotations

import asyncio
import logging

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


class RefusedOnce:
    """An action whose first attempt meets a refused connection (an outage)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionRefusedError("refused")
        return "done"


async def test_an_outage_is_a_warning_and_a_defect_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[BaseException] = []
    with caplog.at_level(logging.WARNING, logger="processors.retry"):
        await run_until_done(RefusedOnce(), what="outage batch", sleep=no_sleep, on_retry=seen.append)
        await run_until_done(Failing(times=1), what="defect batch", sleep=no_sleep, on_retry=seen.append)
    levels = [(record.levelno, record.getMessage().split(" failed")[0]) for record in caplog.records]
    assert levels == [(logging.WARNING, "outage batch"), (logging.ERROR, "defect batch")]
    assert caplog.records[0].exc_info is None
    assert caplog.records[1].exc_info is not None and caplog.records[1].exc_info[0] is RuntimeError
    assert [type(exc) for exc in seen] == [ConnectionRefusedError, RuntimeError]


async def test_cancellation_is_never_retried() -> None:
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await run_until_done(cancelled, what="test batch", sleep=no_sleep)
    assert calls == 1
