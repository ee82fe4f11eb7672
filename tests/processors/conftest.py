"""Fixtures of the processor tests: an asyncpg pool on the test database and a recording publisher."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from db.queries import sink
from processors.publishing import Record


class RecordingPublisher:
    """Stands in for the broker in handler tests that run without Kafka: keeps what was published."""

    def __init__(self, fail_topics: set[str] | None = None) -> None:
        self.sent: dict[str, list[Record]] = {}
        self.fail_topics = fail_topics or set()

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Remember the records as acknowledged, or fail like an unreachable broker for `fail_topics`."""
        if topic in self.fail_topics and records:
            raise RuntimeError(f"no acknowledgement from {topic}")
        self.sent.setdefault(topic, []).extend(records)


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small asyncpg pool on the session's test database."""
    pool = await sink.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def token_id() -> uuid.UUID:
    """A fresh token id: each test's orders are its own."""
    return uuid.uuid4()


@pytest.fixture
def publisher() -> RecordingPublisher:
    """A fresh recording publisher."""
    return RecordingPublisher()
