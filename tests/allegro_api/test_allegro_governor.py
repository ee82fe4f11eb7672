"""The rate governor never exceeds its window budget, is fair across keys and pauses every key."""

from __future__ import annotations

import asyncio
import time

import pytest

from allegro_api import RateGovernor


async def _acquire_all(governor: RateGovernor, key: str, count: int, log: list[tuple[str, float]]) -> None:
    for _ in range(count):
        await governor.acquire(key)
        log.append((key, time.monotonic()))


async def test_budget_is_never_exceeded_in_any_window() -> None:
    budget, window = 5, 0.1
    governor = RateGovernor(budget, window_seconds=window)
    log: list[tuple[str, float]] = []
    started = time.monotonic()
    await asyncio.gather(*(_acquire_all(governor, f"k{i}", 6, log) for i in range(3)))
    elapsed = time.monotonic() - started
    times = sorted(moment for _, moment in log)
    assert len(times) == 18
    # Grant n + budget may only happen once grant n has left the window.
    tolerance = 0.005
    for earlier, later in zip(times, times[budget:], strict=False):
        assert later - earlier >= window - tolerance
    # 18 grants at 5 per 0.1 s need at least three full windows of waiting.
    assert elapsed >= 3 * window - tolerance
    stats = governor.stats()
    assert stats.granted == 18
    assert stats.waited > 0
    assert stats.wait_seconds > 0


async def test_hog_key_does_not_starve_another_key() -> None:
    # A window long enough that the set-up below always ends inside it, on a busy machine too (with
    # 20 ms, a slow scheduler let the window lapse before the journal queued, and the order varied).
    governor = RateGovernor(2, window_seconds=0.1)
    order: list[str] = []

    async def one(key: str) -> None:
        await governor.acquire(key)
        order.append(key)

    # Use up the window, then queue 30 backfill requests before a single journal poll arrives.
    await governor.acquire("warmup")
    await governor.acquire("warmup")
    hog = [asyncio.create_task(one("backfill")) for _ in range(30)]
    await asyncio.sleep(0)
    journal = [asyncio.create_task(one("journal")) for _ in range(3)]
    await asyncio.gather(*hog, *journal)
    # Round robin: the journal's three requests are served within the first six grants,
    # not after the hog's thirty.
    journal_positions = [index for index, key in enumerate(order) if key == "journal"]
    assert journal_positions == [1, 3, 5]
    assert order.count("backfill") == 30


async def test_pause_holds_every_key_until_the_deadline() -> None:
    governor = RateGovernor(100, window_seconds=1.0)
    await governor.acquire("a")
    governor.pause_for(0.15)
    started = time.monotonic()
    waited: dict[str, float] = {}

    async def timed(key: str) -> None:
        await governor.acquire(key)
        waited[key] = time.monotonic() - started

    await asyncio.gather(timed("a"), timed("b"), timed("c"))
    assert min(waited.values()) >= 0.14
    assert governor.stats().pauses == 1


async def test_shorter_pause_does_not_shorten_a_longer_one() -> None:
    governor = RateGovernor(100)
    governor.pause_for(10.0)
    deadline = governor.paused_until
    governor.pause_for(0.01)
    assert governor.paused_until == deadline


async def test_cancelled_waiter_gives_its_slot_to_the_next_key() -> None:
    governor = RateGovernor(1, window_seconds=0.05)
    await governor.acquire("a")
    doomed = asyncio.create_task(governor.acquire("a"))
    survivor = asyncio.create_task(governor.acquire("b"))
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.wait_for(survivor, timeout=1.0)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    stats = governor.stats()
    assert stats.granted == 2
    assert stats.waiting == 0


def test_rejects_an_empty_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        RateGovernor(0)
