"""Order list filters and sorting, one order, its revisions; every response checked against its model."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest

from api.schemas.orders import OrderOut, OrderPage, RevisionList
from core.order_fields import FILTERS, OrderField
from tests.api.rows import Rows


async def list_ids(client: httpx.AsyncClient, user_id: str, **params: Any) -> list[str]:
    """checkout_form_ids of one page, the page validated against OrderPage."""
    response = await client.get(f"/v1/users/{user_id}/orders", params=params)
    assert response.status_code == 200, response.text
    page = OrderPage.model_validate_json(response.content)
    return [item.checkout_form_id for item in page.items]


async def test_orders_come_newest_update_first_with_the_stored_form(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    old = await rows.order(token, form_id="old", minutes=1)
    new = await rows.order(token, form_id="new", minutes=5)
    response = await client.get(f"/v1/users/{user_id}/orders")
    page = OrderPage.model_validate_json(response.content)
    assert [item.checkout_form_id for item in page.items] == [new, old]
    assert page.next_cursor is None
    first = page.items[0]
    assert first.order["id"] == "new" and first.order["note"]["text"] == "zażółć gęślą jaźń"
    assert first.total_amount == "10.00" and first.token_id == token


async def test_orders_without_update_time_come_first_then_ties_by_newest_row(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    tie_a = await rows.order(token, form_id="tie-a", minutes=3)
    tie_b = await rows.order(token, form_id="tie-b", minutes=3)
    no_time = await rows.order(token, form_id="no-time", minutes=None)
    assert await list_ids(client, user_id) == [no_time, tie_b, tie_a]


async def test_sort_by_purchase_time(client: httpx.AsyncClient, rows: Rows, user_id: str) -> None:
    token = await rows.token()
    bought_late = await rows.order(token, form_id="b-late", minutes=1, bought_minutes=50)
    bought_early = await rows.order(token, form_id="b-early", minutes=9, bought_minutes=10)
    assert await list_ids(client, user_id, sort="-bought_at") == [bought_late, bought_early]
    assert await list_ids(client, user_id) == [bought_early, bought_late]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "CANCELLED"}, ["cancelled"]),
        ({"fulfillment_status": "SENT"}, ["sent"]),
        ({"buyer_login": "jan"}, ["jan"]),
        ({"updated_at_gte": "2026-03-01T12:20:00Z"}, ["jan", "sent"]),
        ({"updated_at_lte": "2026-03-01T12:20:00Z"}, ["sent", "cancelled", "plain"]),
        ({"updated_at_gte": "2026-03-01T12:15:00Z", "updated_at_lte": "2026-03-01T12:25:00Z"}, ["sent"]),
        ({"bought_at_gte": "2026-03-01T13:00:00+01:00"}, ["jan", "sent", "cancelled", "plain"]),
        ({"bought_at_lte": "2026-03-01T12:05:00Z"}, ["cancelled", "plain"]),
        ({"bought_at_gte": "2026-03-01T12:06:00Z", "bought_at_lte": "2026-03-01T12:30:00Z"}, ["sent"]),
        ({"status": "BOUGHT"}, []),
    ],
)
async def test_each_filter_selects_its_orders(
    client: httpx.AsyncClient, rows: Rows, user_id: str, params: dict[str, str], expected: list[str]
) -> None:
    token = await rows.token()
    await rows.order(token, form_id="plain", minutes=0, bought_minutes=0)
    await rows.order(token, form_id="cancelled", minutes=10, bought_minutes=5, status="CANCELLED")
    await rows.order(token, form_id="sent", minutes=20, bought_minutes=20, fulfillment_status="SENT")
    await rows.order(token, form_id="jan", minutes=30, bought_minutes=40, buyer_login="jan")
    assert await list_ids(client, user_id, **params) == expected


# Orders around the day boundary of 2026-03-01 in UTC (BASE_TIME is 2026-03-01 12:00 UTC): the day's first
# and last microsecond, and the next day's first.
_DAY_EDGES = {"first": -720.0, "last": (43_200 - 0.000_001) / 60, "next-day": 720.0}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"updated_at_gte": "2026-03-01"}, ["next-day", "last", "first"]),
        ({"updated_at_gte": "2026-03-02"}, ["next-day"]),
        ({"updated_at_lte": "2026-03-01"}, ["last", "first"]),
        ({"updated_at_lte": "2026-02-28"}, []),
        ({"updated_at_gte": "2026-03-01", "updated_at_lte": "2026-03-01"}, ["last", "first"]),
        ({"bought_at_gte": "2026-03-02"}, ["next-day"]),
        ({"bought_at_lte": "2026-03-01"}, ["last", "first"]),
        ({"bought_at_gte": "2026-03-02", "bought_at_lte": "2026-03-02"}, ["next-day"]),
        # A date and an instant mix: the instant keeps its own meaning.
        (
            {"updated_at_gte": "2026-03-01T23:59:59.999999Z", "updated_at_lte": "2026-03-02"},
            ["next-day", "last"],
        ),
    ],
)
async def test_a_plain_date_bounds_the_whole_utc_day(
    client: httpx.AsyncClient, rows: Rows, user_id: str, params: dict[str, str], expected: list[str]
) -> None:
    token = await rows.token()
    for form_id, minutes in _DAY_EDGES.items():
        await rows.order(token, form_id=form_id, minutes=minutes, bought_minutes=minutes)
    assert await list_ids(client, user_id, **params) == expected
    response = await client.get(f"/v1/users/{user_id}/orders/export", params=params)
    assert [line["checkout_form_id"] for line in map(orjson.loads, response.content.splitlines())] == expected


@pytest.mark.parametrize("order_field", FILTERS, ids=lambda order_field: order_field.name)
async def test_every_order_field_filter_is_a_query_parameter(
    client: httpx.AsyncClient, rows: Rows, user_id: str, order_field: OrderField
) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/users/{user_id}/orders"]["get"]
    (schema,) = [p["schema"] for p in operation["parameters"] if p["name"] == order_field.filter]
    enum = next((option["enum"] for option in schema.get("anyOf", [schema]) if "enum" in option), None)
    wanted, other = enum[:2] if enum else ("wanted value", "other value")
    token = await rows.token()
    await rows.order(token, form_id="wanted", minutes=1, columns={order_field.name: wanted})
    await rows.order(token, form_id="other", minutes=2, columns={order_field.name: other})
    assert await list_ids(client, user_id, **{str(order_field.filter): wanted}) == ["wanted"]


async def test_token_filter_and_other_users_orders(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    mine, also_mine = await rows.token(), await rows.token()
    other_user = f"{user_id}-other"
    theirs = await rows.token(user_id=other_user)
    await rows.order(mine, form_id="a", minutes=1)
    await rows.order(also_mine, form_id="b", minutes=2)
    await rows.order(theirs, form_id="c", minutes=3, user_id=other_user)
    assert await list_ids(client, user_id) == ["b", "a"]
    assert await list_ids(client, user_id, token_id=str(mine)) == ["a"]
    assert await list_ids(client, user_id, token_id=str(theirs)) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"status": "SHIPPED"}, "status"),
        ({"fulfillment_status": "x"}, "fulfillment_status"),
        ({"sort": "updated_at"}, "sort"),
        ({"token_id": "123"}, "token_id"),
        ({"bought_at_gte": "yesterday"}, "bought_at_gte"),
        ({"updated_at_lte": "2026-01-01T00:00:00"}, "updated_at_lte"),
        ({"updated_at_lte": "9999-12-31T23:59:59-23:00"}, "updated_at_lte"),
        ({"bought_at_gte": "2026-02-30"}, "bought_at_gte"),
        ({"updated_at_lte": "2026-13-01"}, "updated_at_lte"),
        ({"updated_at_gte": "2026-3-1"}, "updated_at_gte"),
        ({"bought_at_lte": "2026-03-01 "}, "bought_at_lte"),
        ({"updated_at_gte": "\uff12\uff10\uff12\uff16-03-01"}, "updated_at_gte"),
        ({"bought_at_gte": "2026-03-02", "bought_at_lte": "2026-03-01"}, "bought_at_gte"),
        ({"bought_at_gte": "2026-02-01T00:00:00Z", "bought_at_lte": "2026-01-01T00:00:00Z"}, "bought_at_gte"),
        (
            {"updated_at_gte": "2026-02-01T00:00:00Z", "updated_at_lte": "2026-01-01T00:00:00Z"},
            "updated_at_gte",
        ),
        ({"buyer_login": "a\x00b"}, "buyer_login"),
        ({"buyer_login": ""}, "buyer_login"),
    ],
)
async def test_invalid_filters_are_422_naming_the_field(
    client: httpx.AsyncClient, user_id: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(f"/v1/users/{user_id}/orders", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ["query", field] in [error["loc"] for error in response.json()["errors"]]


async def test_limit_of_500_is_accepted(client: httpx.AsyncClient, user_id: str) -> None:
    assert await list_ids(client, user_id, limit="500") == []


async def test_one_order_by_id(client: httpx.AsyncClient, rows: Rows, user_id: str) -> None:
    token = await rows.token()
    form_id = await rows.order(token, minutes=7, buyer_login="ola")
    response = await client.get(f"/v1/users/{user_id}/orders/{form_id}")
    assert response.status_code == 200
    order = OrderOut.model_validate_json(response.content)
    assert (order.checkout_form_id, order.buyer_login, order.order["id"]) == (form_id, "ola", form_id)


async def test_an_id_held_by_two_tokens_returns_the_latest_unless_a_token_is_named(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    older, newer = await rows.token(), await rows.token()
    await rows.order(older, form_id="shared", minutes=1, buyer_login="from-older")
    await rows.order(newer, form_id="shared", minutes=9, buyer_login="from-newer")
    response = await client.get(f"/v1/users/{user_id}/orders/shared")
    assert response.json()["buyer_login"] == "from-newer"
    response = await client.get(f"/v1/users/{user_id}/orders/shared", params={"token_id": str(older)})
    assert response.json()["buyer_login"] == "from-older"


async def test_another_users_order_and_unknown_ids_are_404(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    other_user = f"{user_id}-other"
    theirs = await rows.token(user_id=other_user)
    form_id = await rows.order(theirs, user_id=other_user)
    for path in (f"orders/{form_id}", f"orders/{form_id}/revisions", f"orders/{uuid.uuid4()}"):
        response = await client.get(f"/v1/users/{user_id}/{path}")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/v1/users/{other_user}/orders/{form_id}")).status_code == 200


async def test_malformed_order_id_is_422(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get(f"/v1/users/{user_id}/orders/{'x' * 65}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "checkout_form_id"]


async def test_revisions_newest_capture_first(client: httpx.AsyncClient, rows: Rows, user_id: str) -> None:
    token = await rows.token()
    form_id = await rows.order(token)
    await rows.revision(token, form_id, "rev-1", minutes=1)
    await rows.revision(token, form_id, "rev-2", minutes=2)
    response = await client.get(f"/v1/users/{user_id}/orders/{form_id}/revisions")
    assert response.status_code == 200
    revisions = RevisionList.model_validate_json(response.content)
    assert [r.revision for r in revisions.items] == ["rev-2", "rev-1"]
    assert revisions.items[0].order["revision"] == "rev-2" and revisions.token_id == token
    page = await client.get(
        f"/v1/users/{user_id}/orders/{form_id}/revisions", params={"limit": 1, "offset": 1}
    )
    assert [r["revision"] for r in page.json()["items"]] == ["rev-1"]
