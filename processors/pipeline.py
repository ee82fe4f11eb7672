"""Taking the next batch while the last one is stored: an agent's loop, with acks held until stored.

Faust's `take_events` buffers a batch message by message on this process's one event-loop thread, and
stops buffering while the agent handles a batch. Run in turn, this thread and PostgreSQL each sat idle
half the time. Here the agent only hands batches over; one storing task stores them in Kafka order, one
at a time, each as soon as the last one committed (with everything taken meanwhile, up to a batch),
while the agent goes on taking.

Acks: `take_events` acks a batch's events when the agent asks for the next batch, which is now long
before they are stored. So each event's ack is withheld (`processors.faust_internals.withhold_acks`)
and released only after its batch is stored. Events still waiting, or in a store cut off
by a stop or a rebalance, are never acked: Kafka redelivers them, and the handler is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from processors.faust_internals import release_acks, withhold_acks
from processors.messages import RawMessage


def raw_message(message: Any) -> RawMessage:
    """Our broker-neutral view of a Faust message (key and value stay bytes)."""
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((name, bytes(value or b"")) for name, value in headers),
        timestamp=message.timestamp,
    )


async def store_while_taking(
    batches: AsyncIterator[list[Any]],
    store: Callable[[list[RawMessage]], Awaitable[None]],
    *,
    batch_size: int,
) -> None:
    """Store every batch `batches` yields, in order, while the next ones are taken; returns once the
    last is stored (a cancellation leaves what is not stored unacked).

    At most a batch's worth of events waits to be stored (besides the one being stored); beyond that the
    agent waits, which stops Faust from buffering more. Memory: the worker holds about as many messages
    as when it took and stored in turn, since Faust's own buffer is sized to one batch (`create_app`).
    `store` must not raise (it retries until done); if it does anyway, the error ends the agent with
    the waiting events unacked.
    """
    waiting: list[Any] = []
    arrived, room, idle = asyncio.Event(), asyncio.Event(), asyncio.Event()
    room.set()
    idle.set()

    async def store_in_order() -> None:
        while True:
            await arrived.wait()
            events = waiting[:batch_size]
            del waiting[:batch_size]
            if not waiting:
                arrived.clear()
            if len(waiting) < batch_size:
                room.set()
            await store([raw_message(event.message) for event in events])
            release_acks(events)
            if not waiting:
                idle.set()

    storing = asyncio.create_task(store_in_order(), name="store-in-order")
    try:
        async for events in batches:
            withhold_acks(events)
            waiting.extend(events)
            idle.clear()
            arrived.set()
            if len(waiting) >= batch_size:
                room.clear()
            await _until_either(room.wait(), storing)
        await _until_either(idle.wait(), storing)  # the stream ended: store what it gave
    finally:
        storing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await storing


async def _until_either(wait: Awaitable[Any], storing: asyncio.Task[None]) -> None:
    """Wait for `wait`, or re-raise the storing task's error if it ends first."""
    waiter = asyncio.ensure_future(wait)
    try:
        await asyncio.wait({waiter, storing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if storing.done():
        storing.result()  # raises its error; a storing task never returns otherwise
        raise RuntimeError("the storing task ended")
