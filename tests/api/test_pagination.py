"""Keyset pagination: edges, stability under inserts, and cursors that are altered or foreign."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.api.rows import Rows


async def walk(client: httpx.AsyncClient, user_id: str, **params: Any) -> list[list[str]]:
    """Every page of a listing, as lists of checkout_form_ids."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/users/{user_id}/orders", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["checkout_form_id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


async def test_empty_listing_has_no_cursor(client: httpx.AsyncClient, user_id: str) -> None:
    assert await walk(client, user_id) == [[]]


async def test_exactly_full_last_page_has_no_cursor(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    for minute in range(4):
        await rows.order(token, form_id=f"o{minute}", minutes=minute)
    assert await walk(client, user_id, limit=2) == [["o3", "o2"], ["o1", "o0"]]
    assert await walk(client, user_id, limit=4) == [["o3", "o2", "o1", "o0"]]


@pytest.mark.parametrize("sort", ["-updated_at", "-bought_at"])
async def test_pages_cover_every_row_once_across_ties_and_missing_times(
    client: httpx.AsyncClient, rows: Rows, user_id: str, sort: str
) -> None:
    token = await rows.token()
    expected_null_first = []
    for index in range(3):
        expected_null_first.append(
            await rows.order(token, form_id=f"null{index}", minutes=None, bought_minutes=None)
        )
    for index in range(7):
        await rows.order(token, form_id=f"tie{index}", minutes=5, bought_minutes=5)
    for index in range(4):
        await rows.order(token, form_id=f"t{index}", minutes=index, bought_minutes=index)
    pages = await walk(client, user_id, limit=3, sort=sort)
    flat = [form_id for page in pages for form_id in page]
    assert sorted(flat) == sorted(
        {*expected_null_first, *(f"tie{i}" for i in range(7)), *(f"t{i}" for i in range(4))}
    )
    assert len(flat) == len(set(flat)) == 14
    # NULL times first (newest row first), then ties by newest row, then older times.
    assert flat[:3] == ["null2", "null1", "null0"]
    assert flat[3:10] == [f"tie{i}" for i in reversed(range(7))]
    assert flat[10:] == ["t3", "t2", "t1", "t0"]


async def test_pages_are_stable_while_newer_orders_arrive(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    for minute in range(6):
        await rows.order(token, form_id=f"o{minute}", minutes=minute)
    first = (await client.get(f"/v1/users/{user_id}/orders", params={"limit": 2})).json()
    assert [i["checkout_form_id"] for i in first["items"]] == ["o5", "o4"]
    # New orders land before the cursor (newer) and inside the already-read range: neither shifts the rest.
    await rows.order(token, form_id="newest", minutes=100)
    await rows.order(token, form_id="between", minutes=4.5)
    rest = await walk(client, user_id, limit=2, cursor=first["next_cursor"])
    assert [form_id for page in rest for form_id in page] == ["o3", "o2", "o1", "o0"]


async def _cursor(client: httpx.AsyncClient, rows: Rows, user_id: str) -> str:
    token = await rows.token()
    for minute in range(3):
        await rows.order(token, minutes=minute)
    cursor: str = (await client.get(f"/v1/users/{user_id}/orders", params={"limit": 1})).json()["next_cursor"]
    assert cursor
    return cursor


def _flip_payload_byte(cursor: str) -> str:
    payload, mac = cursor.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-3] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode() + "." + mac


async def test_altered_cursor_is_400(client: httpx.AsyncClient, rows: Rows, user_id: str) -> None:
    cursor = await _cursor(client, rows, user_id)
    for bad in (_flip_payload_byte(cursor), cursor[:-2], cursor.replace(".", ""), "garbage", "a.b", "€.€"):
        response = await client.get(f"/v1/users/{user_id}/orders", params={"cursor": bad})
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_cursor_of_other_filters_sort_or_user_is_400(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    cursor = await _cursor(client, rows, user_id)
    for path, params in (
        (f"/v1/users/{user_id}/orders", {"status": "CANCELLED"}),
        (f"/v1/users/{user_id}/orders", {"sort": "-bought_at"}),
        (f"/v1/users/{user_id}-other/orders", {}),
    ):
        response = await client.get(path, params={**params, "cursor": cursor})
        assert response.status_code == 400, params
        assert "another query" in response.json()["detail"]
    assert (await client.get(f"/v1/users/{user_id}/orders", params={"cursor": cursor})).status_code == 200


async def test_overlong_cursor_is_422(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get(f"/v1/users/{user_id}/orders", params={"cursor": "a" * 513})
    assert response.status_code == 422
