"""Shared input types: user ids, form ids, instants, Allegro's status enums."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
CHECKOUT_FORM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Text filters go to PostgreSQL, which cannot store NUL; reject it here instead of failing there.
PRINTABLE_PATTERN = r"^[^\x00-\x1f]+$"

CheckoutFormStatus = Literal["BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED"]
FulfillmentStatus = Literal[
    "NEW",
    "PROCESSING",
    "READY_FOR_SHIPMENT",
    "READY_FOR_PICKUP",
    "SENT",
    "PICKED_UP",
    "CANCELLED",
    "SUSPENDED",
    "RETURNED",
]


def _as_utc(value: datetime) -> datetime:
    """Normalise to UTC, refusing instants that fall outside the representable years once converted."""
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the instant is out of range") from exc


Instant = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""A timezone-aware instant (RFC 3339 with an offset), normalised to UTC."""


# A plain calendar date, as RFC 3339's `full-date`: four-digit year, two-digit month and day.
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT_OR_DATE_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
)


def _day_at(value: Any, at: time) -> Any:
    """A `YYYY-MM-DD` string as the datetime `at` (UTC) on that day; any other value unchanged (the
    instant's own validation then accepts or refuses it). Raises ValueError for a date that does not
    exist (`2026-02-30`)."""
    if isinstance(value, str) and _FULL_DATE.fullmatch(value):
        return datetime.combine(date.fromisoformat(value), at, tzinfo=UTC)
    return value


def _day_start(value: Any) -> Any:
    return _day_at(value, time.min)


def _day_end(value: Any) -> Any:
    return _day_at(value, time.max)


InstantFrom = Annotated[Instant, BeforeValidator(_day_start), _INSTANT_OR_DATE_SCHEMA]
"""A lower bound: an Instant, or a plain `YYYY-MM-DD` meaning 00:00:00 UTC of that day."""

InstantUntil = Annotated[Instant, BeforeValidator(_day_end), _INSTANT_OR_DATE_SCHEMA]
"""An inclusive upper bound: an Instant, or a plain `YYYY-MM-DD` meaning the last microsecond of that day in
UTC (23:59:59.999999, the finest time PostgreSQL stores), so the whole day is included."""
