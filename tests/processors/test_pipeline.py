"""The agent loop that stores batches while taking the next: order, acks only after storing, backpressure.

Faust's stream and events are stood in for by the few attributes the loop touches, with Faust's ack
rule (a message flagged acked is skipped); the worker tests run the loop inside real Faust workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from processors.messages import RawMessage
from processors.pipeline import store_while_taking


@dataclass
class Message:
    offset: int
    acked: bool = False
    topic: str = "snapshots"
    partition: int = 0
    key: bytes = b"k"
    value: bytes = b"v"
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: float = 0.0


@dataclass
class Event:
    message: Message
    committed: list[int]

    def ack(self) -> bool:
        """Faust's rule: a message flagged acked is skipped; otherwise its offset may be committed."""
        if self.message.acked:
            return False
        self.message.acked = True
        self.committed.append(self.message.offset)
        return True


@dataclass
class Stream:
    """Where the offsets Faust would mark for commit are recorded."""

    committed: list[int] = field(default_factory=list)

    def events(self, first: int, count: int) -> list[Event]:
        return [Event(Message(offset), self.committed) for offset in range(first, first + count)]


async def taken(chunks: list[list[Event]], taking: list[int]) -> AsyncIterator[list[Event]]:
    """Yields like `take_events`: acks a chunk's events when the next one is asked for."""
    for chunk in chunks:
        taking.append(chunk[0].message.offset)
        yield chunk
        for event in chunk:
            event.ack()


class Store:
    """Stores (records) batches; the first one waits until `release` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def __call__(self, messages: list[RawMessage]) -> None:
        if not self.batches:
            self.batches.append([])  # the first store has started
            await self.release.wait()
            self.batches[0] = [m.offset for m in messages]
            return
        self.batches.append([m.offset for m in messages])


async def test_batches_are_taken_while_one_is_stored_and_acked_only_once_stored_in_order() -> None:
    stream, store, taking = Stream(), Store(), list[int]()
    chunks = [stream.events(0, 3), stream.events(3, 2), stream.events(5, 2)]
    agent = asyncio.create_task(store_while_taking(taken(chunks, taking), store, batch_size=10))
    for _ in range(50):
        await asyncio.sleep(0)
    # The first batch is still being stored, yet every chunk was taken; nothing is acked.
    assert taking == [0, 3, 5]
    assert stream.committed == []
    store.release.set()
    await asyncio.wait_for(agent, 5)
    # Everything taken meanwhile was stored as one batch after the first, in Kafka order.
    assert store.batches == [[0, 1, 2], [3, 4, 5, 6]]
    assert stream.committed == list(range(7))


async def test_a_full_backlog_stops_taking_until_the_store_catches_up() -> None:
    stream, store, taking = Stream(), Store(), list[int]()
    chunks = [stream.events(0, 2), stream.events(2, 2), stream.events(4, 2), stream.events(6, 2)]
    agent = asyncio.create_task(store_while_taking(taken(chunks, taking), store, batch_size=1))
    for _ in range(50):
        await asyncio.sleep(0)
    # A batch's worth (1 event) waiting while the first is stored: the agent stops taking.
    assert taking == [0]
    store.release.set()
    await asyncio.wait_for(agent, 5)
    assert taking == [0, 2, 4, 6]
    assert [offset for batch in store.batches for offset in batch] == list(range(8))
    assert all(len(batch) == 1 for batch in store.batches)
    assert stream.committed == list(range(8))


async def test_a_stop_leaves_everything_not_stored_unacked() -> None:
    stream, store, taking = Stream(), Store(), list[int]()
    chunks = [stream.events(0, 3), stream.events(3, 2)]

    async def then_wait() -> AsyncIterator[list[Event]]:
        async for chunk in taken(chunks, taking):
            yield chunk
        await asyncio.Event().wait()  # the stream goes on; the worker is stopped

    agent = asyncio.create_task(store_while_taking(then_wait(), store, batch_size=10))
    for _ in range(50):
        await asyncio.sleep(0)
    agent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await agent
    store.release.set()
    await asyncio.sleep(0)
    assert stream.committed == []


async def test_a_store_that_raises_ends_the_agent_with_its_batch_unacked() -> None:
    stream, taking = Stream(), list[int]()

    async def failing(messages: list[RawMessage]) -> None:
        raise RuntimeError("disk full")

    async def then_wait() -> AsyncIterator[list[Event]]:
        async for chunk in taken([stream.events(0, 2)], taking):
            yield chunk
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="disk full"):
        await asyncio.wait_for(store_while_taking(then_wait(), failing, batch_size=10), 5)
    assert stream.committed == []
