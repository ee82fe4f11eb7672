"""A seller's order-event journal: ids are publication times in microseconds, strictly increasing."""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field


@dataclass(slots=True)
class EventJournal:
    """Append-only (except purge) list of pre-serialised events, sorted by id."""

    ids: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    occurred: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    def next_id(self, published_us: int, now_us: int) -> int:
        """The id for an event published at `published_us`, never at or before the newest id.

        Historical events are published at their own time; if newer events already exist, the
        event gets a current-time id instead, so ids stay strictly increasing.
        """
        last = self.ids[-1] if self.ids else 0
        if published_us > last:
            return published_us
        return max(now_us, last + 1)

    def append(self, event_id: int, event_type: str, occurred_us: int, payload: bytes) -> None:
        """Add one event; `event_id` must come from `next_id`."""
        self.ids.append(event_id)
        self.types.append(event_type)
        self.occurred.append(occurred_us)
        self.payloads.append(payload)

    def page(self, after: int, oldest: int, types: frozenset[str], limit: int) -> list[bytes]:
        """Up to `limit` events with id > `after` and id >= `oldest`, ascending, of `types` if given."""
        start = max(bisect_right(self.ids, after), bisect_left(self.ids, oldest))
        if not types:
            return self.payloads[start : start + limit]
        found: list[bytes] = []
        for index in range(start, len(self.ids)):
            if self.types[index] in types:
                found.append(self.payloads[index])
                if len(found) == limit:
                    break
        return found

    def latest(self) -> tuple[int, int] | None:
        """(id, occurred µs) of the newest event, or None."""
        return (self.ids[-1], self.occurred[-1]) if self.ids else None

    def purge_before(self, cutoff_us: int) -> int:
        """Drop events that occurred before `cutoff_us`; returns how many."""
        keep = [i for i, occurred in enumerate(self.occurred) if occurred >= cutoff_us]
        removed = len(self.ids) - len(keep)
        if removed:
            self.ids = [self.ids[i] for i in keep]
            self.types = [self.types[i] for i in keep]
            self.occurred = [self.occurred[i] for i in keep]
            self.payloads = [self.payloads[i] for i in keep]
        return removed
