"""Streaming export in NDJSON and CSV with the list's filters and order."""

from __future__ import annotations

import csv
import io

import httpx
import orjson

from api.schemas.orders import OrderOut
from tests.api.rows import Rows


async def _orders(rows: Rows) -> None:
    token = await rows.token()
    for minute in range(5):
        status = "CANCELLED" if minute % 2 else "READY_FOR_PROCESSING"
        await rows.order(token, form_id=f"o{minute}", minutes=minute, status=status)


async def test_ndjson_export_streams_every_order_in_list_order(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    await _orders(rows)
    response = await client.get(f"/v1/users/{user_id}/orders/export", params={"format": "ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in response.headers["content-disposition"]
    lines = response.content.splitlines()
    orders = [OrderOut.model_validate_json(line) for line in lines]
    assert [o.checkout_form_id for o in orders] == ["o4", "o3", "o2", "o1", "o0"]
    assert orders[0].order["id"] == "o4"


async def test_csv_export_applies_filters_and_carries_the_form(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    await _orders(rows)
    response = await client.get(
        f"/v1/users/{user_id}/orders/export", params={"format": "csv", "status": "CANCELLED"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["checkout_form_id"] for row in table] == ["o3", "o1"]
    assert orjson.loads(table[0]["order"])["note"]["text"] == "zażółć gęślą jaźń"
    assert table[0]["status"] == "CANCELLED"


async def test_export_of_nothing_is_empty_and_default_is_ndjson(
    client: httpx.AsyncClient, user_id: str
) -> None:
    response = await client.get(f"/v1/users/{user_id}/orders/export")
    assert (response.status_code, response.content) == (200, b"")
    csv_response = await client.get(f"/v1/users/{user_id}/orders/export", params={"format": "csv"})
    assert csv_response.text.splitlines() == [
        ",".join(csv.reader([csv_response.text.splitlines()[0]]).__next__())
    ]


async def test_export_rejects_unknown_format_and_bad_filters(client: httpx.AsyncClient, user_id: str) -> None:
    for params in (
        {"format": "xml"},
        {"updated_at_gte": "2026-02-01T00:00:00Z", "updated_at_lte": "2026-01-01T00:00:00Z"},
    ):
        response = await client.get(f"/v1/users/{user_id}/orders/export", params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


async def test_export_holds_only_the_users_orders(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    other_user = f"{user_id}-other"
    theirs = await rows.token(user_id=other_user)
    await rows.order(theirs, user_id=other_user)
    assert (await client.get(f"/v1/users/{user_id}/orders/export")).content == b""
