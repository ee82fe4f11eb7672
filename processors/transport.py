"""Faust's Kafka transport with a cheaper hand-over of each fetched message to the agents.

Faust's fetch loop (`Consumer._drain_messages`) hands every message to the topic conductor through
`Service.wait_first(callback(message), suspend_flow.wait())`: the callback and three stop signals
(suspended flow, consumer stopped, consumer crashed) each become a task, and the three losers are
cancelled again, for every message. py-spy put that at about a fifth of the worker's event-loop thread
at 5,000 orders/s, the thread that limits the worker.

`DeliveringConsumer` keeps what the signals are for: a delivery that waits (its channel's buffer is full,
or flow control holds it) must still be abandoned when a rebalance suspends the flow, so the delivery runs
as one task of its own that `stop_flow` cancels. It only stops waiting on two signals nobody needs per
message: the consumer's stop and crash both stop the fetcher, which cancels this loop and the delivery
with it. Any other `wait_first` call (and a delivery while the flow is suspended or the consumer stops)
goes to Faust's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.drivers import aiokafka as faust_kafka
from mode.services import WaitResults


class DeliveringConsumer(faust_kafka.Consumer):
    """Faust's aiokafka consumer, delivering each fetched message as one task instead of four."""

    _delivery: asyncio.Task[Any] | None = None

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 (Faust's signature)
        if not self._is_delivery(coros, timeout) or self.suspend_flow.is_set() or self.should_stop:
            return await super().wait_first(*coros, timeout=timeout)
        deliver, suspended = coros
        suspended.close()  # never started: the flow's suspension is watched by stop_flow instead
        delivery = self._delivery = self.loop.create_task(deliver)
        try:
            result = await delivery
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if delivery.cancelled() and current is not None and not current.cancelling():
                # stop_flow cancelled the delivery, not the loop: as Faust's own, skip to the next message.
                return WaitResults([], [], True)
            raise
        finally:
            self._delivery = None
        return WaitResults([deliver], [result], False)

    def stop_flow(self) -> None:
        super().stop_flow()
        if self._delivery is not None:
            self._delivery.cancel()

    def _is_delivery(self, coros: tuple[Any, ...], timeout: Any) -> bool:
        """True for the fetch loop's call: a coroutine of this consumer's callback (the conductor's, called
        from nowhere else), with a second coroutine beside it, the flow's signal."""
        return (
            timeout is None
            and len(coros) == 2
            and asyncio.iscoroutine(coros[0])
            and asyncio.iscoroutine(coros[1])
            and getattr(coros[0], "cr_code", None) is getattr(self.callback, "__code__", None)
        )


class Transport(faust_kafka.Transport):
    """Faust's aiokafka transport with `DeliveringConsumer`."""

    Consumer = DeliveringConsumer
