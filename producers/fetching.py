"""Fetching the forms a page of events asks for, with as few requests as possible.

Naively each changed form costs one `GET /order/checkout-forms/{id}`: 1,000 new orders, 1,000 requests.
A list of the forms updated between the page's oldest and newest events returns the same forms 100 at a
time, so the planner lists first and fetches singly only what the list did not return (a form that
answers 404 there may be merged away, purged, or only not visible for a while: `producers.missing`
tries it again before deciding). After each list page it compares the list
pages still to come (from `totalCount`) with the forms still missing and takes the cheaper way.

The list window is bounded on both sides and read newest first. Forms updated after the page's newest
event are outside it, so a poller behind the journal does not re-read everything changed since; and
the overlap before the oldest event (lists are not strictly in `updatedAt` order) is only read when a
form is still missing. A form outside the window, or changed again while the list is read, is fetched
singly: the window decides the cost, never what is fetched.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from allegro_api import CheckoutFormPage, FormSnapshot, NotFound
from allegro_api.client import MAX_FORMS_PAGE, MAX_LIST_DEPTH

# Forms are updated at (or a moment after) the events that report them; publication lags a few seconds.
UPDATED_OVERLAP = timedelta(minutes=5)
UPDATED_SLACK = timedelta(seconds=30)
# Below this many forms single GETs cost no more than a list page would.
LIST_WORTH_IT = 3
# The first list page asks for the missing forms and this share more (at least LIST_HEADROOM_MIN), room
# for the forms changed after the page's newest event, which come first in a newest-first list. Not a
# full page: in a steady trickle a journal poll wants a few dozen forms, and the window's other newest
# forms (published by the previous polls) had made both sides decode and encode four times as many.
LIST_HEADROOM = 0.25
LIST_HEADROOM_MIN = 10
SINGLE_FETCH_CONCURRENCY = 8

# (updated at or after, updated at or before, offset, limit) -> a page of that window, newest first
ListUpdatedBetween = Callable[[datetime, datetime, int, int], Awaitable[CheckoutFormPage]]
FetchOne = Callable[[str], Awaitable[FormSnapshot]]


@dataclass
class FetchResult:
    """The forms found and the ids that answered 404."""

    forms: dict[str, FormSnapshot] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    # Every form the list returned, wanted or not: later event pages of the same run may ask for them.
    listed: dict[str, FormSnapshot] = field(default_factory=dict)


async def fetch_forms(
    wanted: Collection[str],
    changed_between: tuple[datetime, datetime],
    list_updated_between: ListUpdatedBetween,
    fetch_one: FetchOne,
) -> FetchResult:
    """Fetch the current form of every id in `wanted` (changed between the two event times), listing where
    that is cheaper than single GETs."""
    result = FetchResult()
    missing = set(wanted)
    if len(missing) >= LIST_WORTH_IT:
        oldest, newest = changed_between
        window = (oldest - UPDATED_OVERLAP, newest + UPDATED_SLACK)
        await _list_what_we_can(missing, window, list_updated_between, result)
    await _fetch_singly(sorted(missing), fetch_one, result)
    return result


async def _list_what_we_can(
    missing: set[str],
    window: tuple[datetime, datetime],
    list_updated_between: ListUpdatedBetween,
    result: FetchResult,
) -> None:
    """Walk the window's list while it is the cheaper way; found ids leave `missing`."""
    offset = 0
    limit = first_page_limit(len(missing))
    while missing:
        page = await list_updated_between(*window, offset, limit)
        limit = MAX_FORMS_PAGE
        for snapshot in page.forms:
            result.listed[snapshot.id] = snapshot
            if snapshot.id in missing:
                result.forms[snapshot.id] = snapshot
                missing.discard(snapshot.id)
        if page.is_last or not missing:
            return
        offset = page.next_offset
        pages_left = math.ceil(max(0, page.total_count - offset) / MAX_FORMS_PAGE)
        if pages_left > len(missing) or offset + MAX_FORMS_PAGE > MAX_LIST_DEPTH:
            return  # single GETs for the rest are cheaper (or the list cannot go deeper)


def first_page_limit(missing: int) -> int:
    """How many forms the first list page asks for when `missing` forms are wanted."""
    return min(MAX_FORMS_PAGE, missing + max(LIST_HEADROOM_MIN, math.ceil(missing * LIST_HEADROOM)))


async def _fetch_singly(ids: list[str], fetch_one: FetchOne, result: FetchResult) -> None:
    """GET each id; a 404 marks it gone."""
    limiter = asyncio.Semaphore(SINGLE_FETCH_CONCURRENCY)

    async def fetch(form_id: str) -> None:
        async with limiter:
            try:
                result.forms[form_id] = await fetch_one(form_id)
            except NotFound:
                result.gone.add(form_id)

    outcomes = await asyncio.gather(*(fetch(form_id) for form_id in ids), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
