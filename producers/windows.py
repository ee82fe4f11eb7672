"""Walking `GET /order/checkout-forms` over a time range, completely, while the list changes under the walk.

The range is cut into windows of the filtered timestamp (`lineItems.boughtAt` for backfills and resyncs,
`updatedAt` for reconciliation), each holding at most 10,000 forms when the walk first counts it; a window
whose `totalCount` passes that is split in halves, a small one lets the next grow again.

Inside a window the walk pages by keyset, not by offset: sorted ascending on the window's field, each page
starts at the last timestamp the previous page ended on (`gte`, offset 0), and forms seen already are
dropped by id. Offsets shift whenever a form before them leaves the list: Allegro purges the oldest orders
every day (exactly where a backfill starts), a merge replaces several forms with one, a changed form moves
in an `updatedAt` list. Each such form had made the next offset page skip one form for good (a 12,000-order
backfill during a purge lost about 1,000). A keyset start does not move when forms before it vanish.

A page shorter than it should be (fewer forms than `limit` and than `totalCount` says remain) is not the
end: it is read again (Allegro served one with 97 of 100 forms and `totalCount` 250 once, field case
short-page). A window is done only when its forms are accounted for: after the walk the window is counted
again, and if that count exceeds the distinct forms seen in it, the window is walked again (only unseen
forms are handed on). A window that still does not add up fails the walk with `IncompleteWalk`, so the run
is recorded failed and its position stays before that window.

The position (window start, window end, keyset start) is saved after every page. A walk resumed inside a
window starts that window again, since the ids it had seen were not saved.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from allegro_api import CheckoutFormPage, FormSnapshot
from allegro_api.client import MAX_FORMS_PAGE, MAX_LIST_DEPTH

log = logging.getLogger(__name__)

WindowField = Literal["lineItems.boughtAt", "updatedAt"]
# Allegro's timestamps have millisecond precision: windows are [start, end] with end = next start - 1 ms.
TICK = timedelta(milliseconds=1)
MIN_SPAN = timedelta(seconds=1)
# A window this empty lets the next one be twice as long.
GROW_BELOW = MAX_LIST_DEPTH // 4
# How often one page is read again while it stays short, and one window walked again while its count
# does not add up, before the walk gives up (and says so).
MAX_REREADS = 3
MAX_REWALKS = 2

# (offset, limit, field at or after, field at or before) -> a page sorted ascending on the field
ListPage = Callable[[int, int, datetime, datetime], Awaitable[CheckoutFormPage]]
FormsHandler = Callable[[Sequence[FormSnapshot]], Awaitable[None]]
SortKey = Callable[[FormSnapshot], datetime | None]
# (window start, window end, ids of every form the complete walk of the window listed)
WindowDone = Callable[[datetime, datetime, set[str]], Awaitable[None]]


class IncompleteWalk(RuntimeError):
    """A window whose forms could not all be accounted for: the walk stops before marking it done."""


@dataclass
class WalkPosition:
    """Where a walk stands: everything before `done_until` is done; the open window and its keyset start."""

    start: datetime
    end: datetime
    done_until: datetime
    window_end: datetime | None = None
    after: datetime | None = None
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
            "after": self.after.isoformat() if self.after else None,
            "span_seconds": self.span_seconds,
            "forms_seen": self.forms_seen,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WalkPosition:
        """Read a position saved by `to_json` (positions saved by the offset walk resume their window)."""
        window_end = data.get("window_end")
        after = data.get("after")
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            done_until=datetime.fromisoformat(data["done_until"]),
            window_end=datetime.fromisoformat(window_end) if window_end else None,
            after=datetime.fromisoformat(after) if after else None,
            span_seconds=data.get("span_seconds"),
            forms_seen=int(data.get("forms_seen", 0)),
        )


def bought_at_key(form: FormSnapshot) -> datetime | None:
    """The value `lineItems.boughtAt` filters and sorts on: the latest line-item purchase."""
    return form.facts.bought_at


def updated_at_key(form: FormSnapshot) -> datetime | None:
    """The value `updatedAt` filters and sorts on."""
    return form.facts.updated_at


def is_short(page: CheckoutFormPage, *, offset: int) -> bool:
    """True when a page read at `offset` holds fewer forms than asked and than `totalCount` says remain:
    not the end of the list, but a page to read again."""
    return len(page.forms) < min(page.limit, max(0, page.total_count - offset))


async def walk_windows(
    position: WalkPosition,
    list_page: ListPage,
    on_forms: FormsHandler,
    on_progress: Callable[[WalkPosition], Awaitable[None]],
    *,
    key: SortKey,
    on_window: WindowDone | None = None,
) -> None:
    """Hand every form of the range to `on_forms` (each once per window), then `on_progress` saves.

    `on_window` learns each complete window's listed ids before it is marked done (what a walk notices
    missing). Raises IncompleteWalk when a window's forms cannot be accounted for after MAX_REWALKS more
    walks.
    """
    span = (
        timedelta(seconds=position.span_seconds) if position.span_seconds else position.end - position.start
    )
    span = max(span, MIN_SPAN)
    while not position.finished:
        window_end = position.window_end or min(position.end, position.done_until + span)
        first = await list_page(0, MAX_FORMS_PAGE, position.done_until, window_end)
        if first.total_count > MAX_LIST_DEPTH and window_end - position.done_until > MIN_SPAN:
            span = (window_end - position.done_until) / 2
            position.window_end = position.done_until + span
            position.span_seconds = span.total_seconds()
            log.debug("window holds %d forms: split to %s", first.total_count, span)
            continue
        position.window_end = window_end
        position.span_seconds = span.total_seconds()
        seen = await _walk_window(position, first, list_page, on_forms, on_progress, key)
        if on_window is not None:
            await on_window(position.done_until, window_end, seen)
        position.done_until = window_end + TICK
        position.window_end = None
        position.after = None
        if first.total_count < GROW_BELOW:
            span *= 2
            position.span_seconds = span.total_seconds()
        await on_progress(position)


async def _walk_window(
    position: WalkPosition,
    first: CheckoutFormPage,
    list_page: ListPage,
    on_forms: FormsHandler,
    on_progress: Callable[[WalkPosition], Awaitable[None]],
    key: SortKey,
) -> set[str]:
    """Walk one window until every form it holds now was seen; `first` is its page from the start.

    Returns the ids seen."""
    start, end = position.done_until, position.window_end
    assert end is not None  # noqa: S101 - set by the caller
    seen: set[str] = set()
    page: CheckoutFormPage | None = first
    for walk in range(MAX_REWALKS + 1):
        pages = await _keyset_pass(position, page, start, end, list_page, on_forms, on_progress, key, seen)
        page = None
        if pages == 1 and walk == 0:
            return seen  # one page held the whole window: nothing could shift between pages
        # The window as it is now: every form in it must have been seen (forms that left it meanwhile,
        # purged, merged or changed, were seen before they left, or never needed to be).
        total = (await list_page(0, 1, start, end)).total_count
        if len(seen) >= total:
            return seen
        log.warning(
            "window %s..%s holds %d forms, %d seen: walking it again (%d)",
            start.isoformat(),
            end.isoformat(),
            total,
            len(seen),
            walk + 1,
        )
    raise IncompleteWalk(
        f"window {start.isoformat()}..{end.isoformat()} holds {total} forms, only {len(seen)} were listed"
    )


async def _keyset_pass(
    position: WalkPosition,
    page: CheckoutFormPage | None,
    start: datetime,
    end: datetime,
    list_page: ListPage,
    on_forms: FormsHandler,
    on_progress: Callable[[WalkPosition], Awaitable[None]],
    key: SortKey,
    seen: set[str],
) -> int:
    """One pass over [start, end] by keyset; adds what it hands on to `seen`. Returns the pages used."""
    after, offset, rereads, pages = start, 0, 0, 0
    while True:
        if page is None:
            page = await list_page(offset, MAX_FORMS_PAGE, after, end)
        pages += 1
        remaining = max(0, page.total_count - offset)
        if is_short(page, offset=offset) and rereads < MAX_REREADS:
            rereads += 1
            log.warning(
                "short list page: %d forms where %d were due (totalCount %d); reading it again",
                len(page.forms),
                min(page.limit, remaining),
                page.total_count,
            )
            page = None
            continue
        rereads = 0
        fresh = [form for form in page.forms if form.id not in seen]
        if fresh:
            await on_forms(fresh)
            seen.update(form.id for form in fresh)
            position.forms_seen += len(fresh)
        if not page.forms or remaining <= len(page.forms):
            return pages
        last = key(page.forms[-1]) or after
        if last > after:
            # The next page starts at the last timestamp seen (forms there come again and are dropped).
            after, offset = last, 0
        else:
            # A whole page on one millisecond: only here does an offset step further.
            offset += len(page.forms)
            if offset + MAX_FORMS_PAGE > MAX_LIST_DEPTH:
                raise IncompleteWalk(f"more than {MAX_LIST_DEPTH} forms share the time {after.isoformat()}")
        position.after = after
        await on_progress(position)
        page = None
