"""Walking `GET /order/checkout-forms` over a time range in windows that stay under the 10,000 offset cap.

Allegro refuses `offset + limit > 10 000`, so a range holding more forms is cut into windows of the
filtered timestamp (`lineItems.boughtAt` for backfills, `updatedAt` for reconciliation). A window whose
`totalCount` passes the cap is split in halves until it fits; a window that turned out small lets the
next one grow again. Inside a window the list is sorted ascending on the same field, so offsets stay
stable while the walk goes on, and the position (window start, window end, offset) can be saved after
every page and resumed after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from allegro_api import CheckoutFormPage
from allegro_api.client import MAX_FORMS_PAGE, MAX_LIST_DEPTH

log = logging.getLogger(__name__)

WindowField = Literal["lineItems.boughtAt", "updatedAt"]
# Allegro's timestamps have millisecond precision: windows are [start, end] with end = next start - 1 ms.
TICK = timedelta(milliseconds=1)
MIN_SPAN = timedelta(seconds=1)
# A window this empty lets the next one be twice as long.
GROW_BELOW = MAX_LIST_DEPTH // 4

ListPage = Callable[[int, int, datetime, datetime], Awaitable[CheckoutFormPage]]
PageHandler = Callable[[CheckoutFormPage], Awaitable[None]]


@dataclass
class WalkPosition:
    """Where a walk stands: everything before `done_until` is done; the open window and its offset."""

    start: datetime
    end: datetime
    done_until: datetime
    window_end: datetime | None = None
    offset: int = 0
    span_seconds: float | None = None
    forms_seen: int = 0

    @classmethod
    def new(cls, start: datetime, end: datetime) -> WalkPosition:
        """A walk over [start, end] that has not begun."""
        return cls(start=start, end=end, done_until=start)

    @property
    def finished(self) -> bool:
        """True when the whole range is done."""
        return self.done_until > self.end

    def to_json(self) -> dict[str, Any]:
        """The position as JSON for `backfill_progress`."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "done_until": self.done_until.isoformat(),
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "offset": self.offset,
            "span_seconds": self.span_seconds,
            "forms_seen": self.forms_seen,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WalkPosition:
        """Read a position saved by `to_json`."""
        window_end = data.get("window_end")
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            done_until=datetime.fromisoformat(data["done_until"]),
            window_end=datetime.fromisoformat(window_end) if window_end else None,
            offset=int(data.get("offset", 0)),
            span_seconds=data.get("span_seconds"),
            forms_seen=int(data.get("forms_seen", 0)),
        )


async def walk_windows(
    position: WalkPosition,
    list_page: ListPage,
    on_page: PageHandler,
    on_progress: Callable[[WalkPosition], Awaitable[None]],
) -> None:
    """Fetch every form of the range page by page: `on_page` publishes, then `on_progress` saves."""
    span = (
        timedelta(seconds=position.span_seconds) if position.span_seconds else position.end - position.start
    )
    span = max(span, MIN_SPAN)
    while not position.finished:
        window_end = position.window_end or min(position.end, position.done_until + span)
        page = await list_page(position.offset, MAX_FORMS_PAGE, position.done_until, window_end)
        too_many = page.total_count > MAX_LIST_DEPTH
        if too_many and position.offset == 0 and window_end - position.done_until > MIN_SPAN:
            span = (window_end - position.done_until) / 2
            position.window_end = position.done_until + span
            position.span_seconds = span.total_seconds()
            log.debug("window holds %d forms: split to %s", page.total_count, span)
            continue
        position.window_end = window_end
        position.span_seconds = span.total_seconds()
        total = page.total_count
        while True:
            await on_page(page)
            position.offset = page.next_offset
            position.forms_seen += len(page.forms)
            if page.is_last or position.offset >= MAX_LIST_DEPTH:
                break
            await on_progress(position)
            limit = min(MAX_FORMS_PAGE, MAX_LIST_DEPTH - position.offset)
            page = await list_page(position.offset, limit, position.done_until, window_end)
        if not page.is_last:
            log.warning(
                "a window of %s still holds more than %d forms; the rest is left", span, MAX_LIST_DEPTH
            )
        position.done_until = window_end + TICK
        position.window_end = None
        position.offset = 0
        if total < GROW_BELOW:
            span *= 2
            position.span_seconds = span.total_seconds()
        await on_progress(position)
