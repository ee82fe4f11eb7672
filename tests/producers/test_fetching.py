"""Planning how a journal page's forms are fetched: a list where it is cheaper, the first list page sized to
what is wanted, single GETs only for what the list did not return."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from allegro_api import CheckoutFormPage, FormSnapshot
from producers.fetching import fetch_forms, first_page_limit
from tests.allegro_api.test_allegro_samples import SAMPLES

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def forms_updated_every_second(count: int, *, newest: datetime) -> list[FormSnapshot]:
    """`count` forms of the sandbox samples, one updated per second up to `newest`, newest first."""
    sample: dict[str, Any] = orjson.loads(SAMPLES[0].read_bytes())["checkoutForms"][0]
    return [
        FormSnapshot.from_dict(
            {**sample, "id": str(uuid.uuid4()), "updatedAt": (newest - timedelta(seconds=i)).isoformat()}
        )
        for i in range(count)
    ]


class AllegroList:
    """Allegro's `GET /order/checkout-forms` with an updatedAt window, sorted newest first."""

    def __init__(self, forms: list[FormSnapshot]) -> None:
        self.forms = sorted(forms, key=lambda f: f.updated_at or NOW, reverse=True)
        self.requests: list[tuple[int, int]] = []

    async def __call__(self, since: datetime, until: datetime, offset: int, limit: int) -> CheckoutFormPage:
        self.requests.append((offset, limit))
        inside = [f for f in self.forms if f.updated_at is not None and since <= f.updated_at <= until]
        page = inside[offset : offset + limit]
        return CheckoutFormPage(
            forms=page, count=len(page), total_count=len(inside), offset=offset, limit=limit
        )


async def no_single_fetch(form_id: str) -> FormSnapshot:
    raise AssertionError(f"{form_id} was fetched singly although the list holds it")


async def test_a_trickle_poll_lists_only_about_as_many_forms_as_it_wants() -> None:
    # Five minutes of a busy seller: 300 forms in the window, the newest 20 are the poll's new orders.
    forms = forms_updated_every_second(300, newest=NOW)
    wanted = forms[:20]
    allegro = AllegroList(forms)

    result = await fetch_forms(
        [f.id for f in wanted], (NOW - timedelta(seconds=19), NOW), allegro, no_single_fetch
    )

    assert set(result.forms) == {f.id for f in wanted}
    assert allegro.requests == [(0, 30)]  # 20 wanted + 10 headroom, not a full page of 100
    assert not result.gone


async def test_forms_pushed_past_the_first_page_by_newer_changes_are_still_listed() -> None:
    # 40 forms changed after the poll's newest event (within the window's slack) come first.
    forms = forms_updated_every_second(300, newest=NOW + timedelta(seconds=25))
    wanted = forms[40:60]
    newest_event = wanted[0].updated_at
    assert newest_event is not None

    allegro = AllegroList(forms)
    result = await fetch_forms(
        [f.id for f in wanted], (newest_event - timedelta(seconds=19), newest_event), allegro, no_single_fetch
    )

    assert set(result.forms) == {f.id for f in wanted}
    assert allegro.requests == [(0, 30), (30, 100)]


async def test_a_large_catch_up_reads_full_pages() -> None:
    assert first_page_limit(1_000) == 100
    assert first_page_limit(90) == 100
    assert first_page_limit(3) == 13
    forms = forms_updated_every_second(250, newest=NOW)
    allegro = AllegroList(forms)

    result = await fetch_forms(
        [f.id for f in forms], (NOW - timedelta(seconds=249), NOW), allegro, no_single_fetch
    )

    assert len(result.forms) == 250
    assert allegro.requests == [(0, 100), (100, 100), (200, 100)]
