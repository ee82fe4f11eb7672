"""Wall-clock helpers: Allegro writes UTC ISO-8601 with milliseconds and a `Z`."""

import time
from datetime import UTC, datetime

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


def now_us() -> int:
    """Current wall-clock time in microseconds since the epoch."""
    return time.time_ns() // 1000


def iso_ms(us: int) -> str:
    """Format epoch microseconds the way Allegro does: `2025-05-13T21:05:52.809Z`."""
    moment = datetime.fromtimestamp(us // 1000 / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def iso_seconds(us: int) -> str:
    """Format epoch microseconds without fractions (`2025-04-23T22:00:00Z`), as some fields are."""
    return datetime.fromtimestamp(us // MICROS_PER_SECOND, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_us(text: str) -> int:
    """Parse an ISO-8601 date-time into epoch microseconds; naive values are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * MICROS_PER_SECOND)
