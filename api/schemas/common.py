"""Shared input types: user ids, form ids, instants, Allegro's status enums."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime

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
