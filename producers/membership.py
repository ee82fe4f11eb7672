"""Which tokens this process owns: Kafka's own group membership over the tokens topic's partitions.

Every poller joins the consumer group `<client_id>-pollers-<tokens topic>` on the tokens topic. A token
belongs to partition `crc32(token_id) % partitions`; a process syncs only the tokens of the partitions
the group assigned it. On revocation the listener stops (cancels and awaits) those tokens' work before it
returns, and only then does the group hand the partitions to another member: a token is never polled
from two places at once. A dead member's partitions move after the session timeout.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from core.settings import KafkaSettings

PartitionsChanged = Callable[[set[int]], Awaitable[None]]


def token_partition(token_id: UUID, partitions: int) -> int:
    """The tokens-topic partition a token belongs to."""
    return zlib.crc32(str(token_id).encode()) % partitions


def create_membership_consumer(
    settings: KafkaSettings, group_id: str, *, session_timeout_ms: int = 10_000
) -> AIOKafkaConsumer:
    """A consumer used only for group membership (it reads nothing that matters)."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-poller",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(1000, session_timeout_ms // 3),
        rebalance_timeout_ms=60_000,
    )


class TokenPartitionListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards rebalances to the poller: stop revoked tokens' work before returning, start assigned ones."""

    def __init__(self, on_revoked: PartitionsChanged, on_assigned: PartitionsChanged) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Awaited by the consumer before it rejoins the group."""
        await self._on_revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Called with the new assignment."""
        await self._on_assigned({tp.partition for tp in assigned})


async def keep_membership(consumer: AIOKafkaConsumer) -> None:
    """Keep polling so the group keeps this member (the messages themselves are ignored)."""
    while True:
        await consumer.getmany(timeout_ms=1000, max_records=100)
        await asyncio.sleep(0)
