"""Broker-neutral shapes the batch handlers work on: raw consumed messages and their dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RawMessage:
    """One consumed Kafka record, undecoded: what Faust and a plain aiokafka consumer both can give."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    # The record's Kafka timestamp (seconds since the epoch): when the poller produced it.
    timestamp: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message that can never be stored, with the reason that goes into the DLQ headers."""

    message: RawMessage
    error_class: str
    reason: str

    def headers(self, first_failed_at: datetime) -> list[tuple[str, bytes]]:
        """DLQ headers: why it failed and where it came from; the original headers are kept after them."""
        ours = [
            ("error_class", self.error_class),
            ("error_message", self.reason[:2000]),
            ("source_topic", self.message.topic),
            ("source_partition", str(self.message.partition)),
            ("source_offset", str(self.message.offset)),
            ("first_failed_at", first_failed_at.isoformat()),
        ]
        return [(name, value.encode()) for name, value in ours] + [
            (f"original.{name}", value) for name, value in self.message.headers
        ]
