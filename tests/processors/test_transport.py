"""The worker's consumer hands each fetched message over as one task, and still abandons a waiting one
when a rebalance suspends the flow, as Faust's own does.

The consumer is the worker's (`create_app`), never started: these tests call its hand-over the way
Faust's fetch loop does, with a delivery callback they control. The worker tests run it against Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from processors.faust_internals import DeliveringConsumer, QuietMonitor
from tests.processors.unstarted import unstarted_consumer, worker_app

Deliver = Callable[[Any], Awaitable[Any]]


def consumer_with(deliver: Deliver) -> DeliveringConsumer:
    """The worker app's consumer class, delivering to `deliver` instead of the agents' conductor."""
    consumer = unstarted_consumer(worker_app("transport"), deliver)
    assert isinstance(consumer, DeliveringConsumer)
    return consumer


async def hand_over(consumer: DeliveringConsumer, message: Any) -> Any:
    """What Faust's fetch loop does with every fetched message."""
    return await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())


async def test_the_worker_app_uses_the_delivering_consumer_and_the_quiet_monitor() -> None:
    app = worker_app("transport")
    assert isinstance(app.consumer, DeliveringConsumer)
    app.consumer._thread.thread_loop.close()  # never started (see tests.processors.unstarted)
    assert isinstance(app.monitor, QuietMonitor)


async def test_a_message_is_delivered_and_its_result_returned() -> None:
    delivered: list[str] = []

    async def deliver(message: str) -> str:
        delivered.append(message)
        return message.upper()

    consumer = consumer_with(deliver)
    tasks_before = len(asyncio.all_tasks())
    results = await hand_over(consumer, "m1")
    assert delivered == ["m1"]
    assert (results.results, results.stopped) == (["M1"], False)
    assert len(asyncio.all_tasks()) == tasks_before  # nothing left behind


def never_room() -> tuple[Deliver, asyncio.Event, asyncio.Event]:
    """A delivery that waits forever, like one whose channel buffer never gets room; and the events set
    when it started and when it was cancelled. A function, as Faust's conductor callback is."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def deliver(message: str) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    return deliver, started, cancelled


async def test_a_waiting_delivery_is_abandoned_when_the_flow_stops() -> None:
    deliver, started, cancelled = never_room()
    consumer = consumer_with(deliver)
    fetch_loop = asyncio.create_task(hand_over(consumer, "m1"))
    await asyncio.wait_for(started.wait(), 5)
    consumer.stop_flow()  # a rebalance revokes the partitions
    results = await asyncio.wait_for(fetch_loop, 5)
    assert results.stopped and results.done == []
    assert cancelled.is_set()


async def test_while_the_flow_is_suspended_delivery_is_skipped_as_faust_does() -> None:
    async def deliver(message: str) -> None:
        await asyncio.Event().wait()

    consumer = consumer_with(deliver)
    consumer.stop_flow()
    results = await asyncio.wait_for(hand_over(consumer, "m1"), 5)
    # Faust's own wait: the suspended flow's signal finished first, the delivery did not.
    assert [getattr(done, "cr_code", None) for done in results.done] != [deliver.__code__]
    assert results.results == [True]


async def test_cancelling_the_fetch_loop_cancels_the_delivery() -> None:
    deliver, started, cancelled = never_room()
    consumer = consumer_with(deliver)
    fetch_loop = asyncio.create_task(hand_over(consumer, "m1"))
    await asyncio.wait_for(started.wait(), 5)
    fetch_loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fetch_loop
    assert cancelled.is_set()


async def test_a_failing_delivery_raises_into_the_fetch_loop() -> None:
    async def deliver(message: str) -> None:
        raise ValueError(message)

    consumer = consumer_with(deliver)
    with pytest.raises(ValueError, match="m1"):
        await hand_over(consumer, "m1")


async def test_other_waits_are_faust_own() -> None:
    async def deliver(message: str) -> None:
        raise AssertionError("not a delivery")

    consumer = consumer_with(deliver)
    results = await consumer.wait_first(asyncio.sleep(0, "slept"), timeout=5)
    assert (results.results, results.stopped) == (["slept"], False)
