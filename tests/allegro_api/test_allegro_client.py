"""The REST client against the simulator: headers, events and checkout forms, paging, the 10,000 cap."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from allegro_api import ClientSideLimitError, format_datetime
from allegro_api.client import ACCEPT
from tests.allegro_api.conftest import HarnessFactory
from tests.allegro_api.harness import USER_AGENT, Harness

MILLIS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_every_request_sends_accept_user_agent_and_bearer(make_harness: HarnessFactory) -> None:
    harness = await make_harness(strict_user_agent=True)
    tokens = await harness.link(await harness.seller(orders=3))
    client = harness.client()
    await client.event_stats(access_token=tokens.access_token)
    await client.events(access_token=tokens.access_token)
    page = await client.checkout_forms(access_token=tokens.access_token)
    await client.checkout_form(page.forms[0].id, access_token=tokens.access_token)
    api_requests = [request for request in harness.sent if request.url.path.startswith("/order/")]
    assert len(api_requests) == 4
    for request in api_requests:
        assert request.headers["accept"] == ACCEPT
        assert request.headers["user-agent"] == USER_AGENT
        assert request.headers["authorization"] == f"Bearer {tokens.access_token}"


async def test_event_stats_names_the_newest_event(harness: Harness) -> None:
    client = harness.client()
    empty = await harness.link(await harness.seller())
    assert (await client.event_stats(access_token=empty.access_token)).latest_event is None
    tokens = await harness.link(await harness.seller(orders=5))
    stats = await client.event_stats(access_token=tokens.access_token)
    everything = await client.events(access_token=tokens.access_token)
    assert stats.latest_event is not None
    assert stats.latest_event.id == everything[-1].id


async def test_events_page_by_limit_and_from_is_exclusive(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller(orders=12))
    client = harness.client()
    everything = await client.events(access_token=tokens.access_token)
    assert len(everything) > 12
    first = await client.events(access_token=tokens.access_token, limit=5)
    assert [event.id for event in first] == [event.id for event in everything[:5]]
    ids = [event.id for event in everything]
    assert ids == sorted(ids, key=int)
    # `from` is exclusive: resuming from the middle continues right after it.
    middle = everything[6].id
    rest = await client.events(access_token=tokens.access_token, from_id=middle)
    assert [event.id for event in rest] == [event.id for event in everything[7:]]


async def test_events_carry_form_references_and_filter_by_type(harness: Harness) -> None:
    seller_id = await harness.seller(orders=4)
    tokens = await harness.link(seller_id)
    client = harness.client()
    bought = await client.events(access_token=tokens.access_token, types=["BOUGHT"])
    assert len(bought) == 4
    assert {event.type for event in bought} == {"BOUGHT"}
    for event in bought:
        assert event.seller_id == seller_id
        assert event.checkout_form_id is not None and event.checkout_form_revision is not None
        assert event.occurred_at.tzinfo is not None
    assert re.search(r"[?&]type=BOUGHT(&|$)", str(harness.sent[-1].url))


async def test_checkout_form_pages_cover_every_form_once(harness: Harness) -> None:
    seller_id = await harness.seller(orders=25)
    tokens = await harness.link(seller_id)
    client = harness.client()
    pages = [
        await client.checkout_forms(offset, 10, access_token=tokens.access_token) for offset in (0, 10, 20)
    ]
    assert [len(page.forms) for page in pages] == [10, 10, 5]
    assert all(page.total_count == 25 for page in pages)
    ids = [form.id for page in pages for form in page.forms]
    truth = await harness.control("GET", f"/sellers/{seller_id}/truth")
    assert sorted(ids) == sorted(order["id"] for order in truth["orders"])
    # Newest purchase first is Allegro's default order.
    bought = [form.form.bought_at for page in pages for form in page.forms if form.form.bought_at is not None]
    assert len(bought) == 25
    assert bought == sorted(bought, reverse=True)


async def test_list_and_detail_keep_the_form_as_allegro_sent_it(harness: Harness) -> None:
    seller_id = await harness.seller(orders=3)
    tokens = await harness.link(seller_id)
    client = harness.client()
    page = await client.checkout_forms(access_token=tokens.access_token)
    truth = {
        order["id"]: order
        for order in (await harness.control("GET", f"/sellers/{seller_id}/truth"))["orders"]
    }
    for snapshot in page.forms:
        assert snapshot.raw == orjson.dumps(truth[snapshot.id]["form"])
        assert snapshot.revision == truth[snapshot.id]["revision"]
        detail = await client.checkout_form(snapshot.id, access_token=tokens.access_token)
        assert detail.raw == snapshot.raw


async def test_filters_reach_allegro_with_dotted_names_and_millisecond_utc_times(harness: Harness) -> None:
    seller_id = await harness.seller(orders=30, days_back=20)
    tokens = await harness.link(seller_id)
    client = harness.client()
    everything = await client.checkout_forms(access_token=tokens.access_token)
    status = everything.forms[0].form.status
    assert status is not None
    # A non-UTC offset and sub-millisecond digits: the wire form must be UTC, milliseconds, Z.
    since = (datetime.now(UTC) - timedelta(days=10)).astimezone(timezone(timedelta(hours=2)))
    since_on_wire = since.replace(microsecond=since.microsecond // 1000 * 1000)
    page = await client.checkout_forms(
        access_token=tokens.access_token, bought_at_gte=since, sort="lineItems.boughtAt", status=status
    )
    params = harness.sent[-1].url.params
    assert MILLIS_Z.match(params["lineItems.boughtAt.gte"])
    assert datetime.fromisoformat(params["lineItems.boughtAt.gte"]) == since_on_wire
    assert params["sort"] == "lineItems.boughtAt" and params["status"] == status
    expected = {
        snapshot.id
        for snapshot in everything.forms
        if snapshot.form.status == status
        and snapshot.form.bought_at is not None
        and snapshot.form.bought_at >= since_on_wire
    }
    assert expected, "the window should hold some orders"
    assert {snapshot.id for snapshot in page.forms} == expected
    assert page.total_count == len(expected) < everything.total_count
    bought = [snapshot.form.bought_at for snapshot in page.forms if snapshot.form.bought_at is not None]
    assert bought == sorted(bought)  # the ascending sort was applied


def test_format_datetime_is_utc_with_milliseconds_and_refuses_naive() -> None:
    moment = datetime(2025, 5, 13, 23, 5, 52, 809_999, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(moment) == "2025-05-13T21:05:52.809Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_datetime(datetime(2025, 5, 13, 21, 5, 52))  # noqa: DTZ001 - the refusal under test


@pytest.mark.parametrize(("offset", "limit"), [(9950, 100), (0, 0), (0, 101), (-1, 10), (10_000, 1)])
async def test_out_of_range_pages_are_refused_before_any_request(
    harness: Harness, offset: int, limit: int
) -> None:
    client = harness.client()
    with pytest.raises(ClientSideLimitError) as caught:
        await client.checkout_forms(offset, limit, access_token="unused")
    assert (caught.value.offset, caught.value.limit) == (offset, limit)
    assert harness.sent == []


async def test_events_limit_out_of_range_is_refused_before_any_request(harness: Harness) -> None:
    with pytest.raises(ClientSideLimitError):
        await harness.client().events(access_token="unused", limit=1001)
    assert harness.sent == []


async def test_a_page_past_the_10000_cap_is_refused_before_it_is_sent(
    make_asgi_harness: HarnessFactory,
) -> None:
    harness = await make_asgi_harness()
    seller_id = await harness.seller(orders=10_050, with_events=False)
    tokens = await harness.link(seller_id)
    client = harness.client()
    # 9,950 + 50 ends exactly at 10,000: Allegro serves it.
    last = await client.checkout_forms(9_950, 50, access_token=tokens.access_token)
    assert (last.offset, last.limit, len(last.forms), last.total_count) == (9_950, 50, 50, 10_050)
    harness.sent.clear()
    with pytest.raises(ClientSideLimitError) as caught:
        await client.checkout_forms(9_960, 50, access_token=tokens.access_token)
    assert caught.value.offset == 9_960
    assert [r for r in harness.sent if r.url.path == "/order/checkout-forms"] == []
