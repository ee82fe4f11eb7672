"""Order records through the API: `include` on one order, an endpoint per kind with its versions, the
"shipped but not delivered after N days" filter and exports; each answer checked against its model.
Records are stored with the worker's own statement (`db.queries.order_records.store_records`)."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson
import pytest

from api.schemas.records import OrderWithRecordsOut, OrderWithRecordsPage, RecordList
from tests.api.record_rows import INVOICES, shipments_text, store, tracking_text
from tests.api.rows import Rows


async def test_include_adds_the_records_exactly_as_stored_and_each_kind_has_its_endpoint(
    client: httpx.AsyncClient, rows: Rows, user_id: str, database_url: str
) -> None:
    token = await rows.token()
    form = await rows.order(token)
    first, second = shipments_text("0001U", days_ago=3), shipments_text("0001U", "0002U", days_ago=3)
    await store(
        database_url,
        token,
        user_id,
        form,
        [
            ("shipments", "", first),
            ("shipments", "", second),
            ("invoices", "", INVOICES),
            ("tracking", "DPD:0001U", tracking_text("0001U", "DELIVERED")),
        ],
    )
    plain = await client.get(f"/v1/users/{user_id}/orders/{form}")
    assert "shipments" not in plain.json()
    response = await client.get(
        f"/v1/users/{user_id}/orders/{form}", params={"include": "tracking,invoices,shipments"}
    )
    assert response.status_code == 200, response.text
    order = OrderWithRecordsOut.model_validate_json(response.content)
    assert order.shipments is not None and order.shipments.document == orjson.loads(second)
    # The invoices answer is spliced in as its stored text: the same bytes, key order and all.
    assert INVOICES.encode() in response.content
    assert order.tracking is not None and [(t.carrier_id, t.waybill) for t in order.tracking] == [
        ("DPD", "0001U")
    ]
    only = (await client.get(f"/v1/users/{user_id}/orders/{form}", params={"include": "invoices"})).json()
    assert "invoices" in only and "shipments" not in only and "tracking" not in only

    page = await client.get(f"/v1/users/{user_id}/orders", params={"include": "invoices"})
    [item] = OrderWithRecordsPage.model_validate_json(page.content).items
    assert item.invoices is not None and item.invoices.document == orjson.loads(INVOICES)
    assert "shipments" not in page.json()["items"][0]
    listed = await client.get(f"/v1/users/{user_id}/orders/{form}/shipments")
    history = RecordList.model_validate_json(listed.content)
    assert [item.document for item in history.items] == [orjson.loads(second)]
    assert [v.document for v in history.versions] == [orjson.loads(first), orjson.loads(second)]
    empty = RecordList.model_validate_json(
        (await client.get(f"/v1/users/{user_id}/orders/{form}/tracking")).content
    )
    assert len(empty.items) == len(empty.versions) == 1


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/orders/{form}", {"include": "parcels"}),
        ("/orders/{form}", {"include": "shipments,receipts"}),
        ("/orders", {"undelivered_after_days": "-1"}),
        ("/orders", {"undelivered_after_days": "soon"}),
        ("/orders/export", {"include": "everything"}),
        ("/orders", {"include": "labels"}),
    ],
)
async def test_bad_record_parameters_are_problem_documents(
    client: httpx.AsyncClient, rows: Rows, user_id: str, path: str, params: dict[str, str]
) -> None:
    token = await rows.token()
    form = await rows.order(token)
    response = await client.get(f"/v1/users/{user_id}{path.format(form=form)}", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["errors"], problem


async def test_records_of_an_unknown_order_are_a_404_problem(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get(f"/v1/users/{user_id}/orders/no-such-order/invoices")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_shipped_but_not_delivered_after_n_days(
    client: httpx.AsyncClient, rows: Rows, user_id: str, database_url: str
) -> None:
    token = await rows.token()
    # Two parcels sent ten days ago, one delivered: not delivered as a whole.
    half = await rows.order(token, form_id="half-delivered")
    await store(
        database_url,
        token,
        user_id,
        half,
        [
            ("shipments", "", shipments_text("A1", "A2", days_ago=10)),
            ("tracking", "DPD:A1", tracking_text("A1", "IN_TRANSIT", "DELIVERED")),
            ("tracking", "DPD:A2", tracking_text("A2", "IN_TRANSIT")),
        ],
    )
    delivered = await rows.order(token, form_id="delivered")
    await store(
        database_url,
        token,
        user_id,
        delivered,
        [
            ("shipments", "", shipments_text("B1", days_ago=10)),
            ("tracking", "DPD:B1", tracking_text("B1", "DELIVERED")),
        ],
    )
    untracked = await rows.order(token, form_id="untracked")
    await store(
        database_url, token, user_id, untracked, [("shipments", "", shipments_text("C1", days_ago=2))]
    )
    await rows.order(token, form_id="no-records")

    async def undelivered(days: int) -> set[str]:
        response = await client.get(f"/v1/users/{user_id}/orders", params={"undelivered_after_days": days})
        assert response.status_code == 200, response.text
        return {item["checkout_form_id"] for item in response.json()["items"]}

    assert await undelivered(7) == {half}
    assert await undelivered(1) == {half, untracked}
    assert await undelivered(30) == set()
    # Paged one by one: the cursor holds across pages of the filtered list.
    first = await client.get(f"/v1/users/{user_id}/orders", params={"undelivered_after_days": 1, "limit": 1})
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    second = await client.get(
        f"/v1/users/{user_id}/orders", params={"undelivered_after_days": 1, "limit": 1, "cursor": cursor}
    )
    assert second.status_code == 200, second.text
    paged = {item["checkout_form_id"] for page in (first, second) for item in page.json()["items"]}
    assert paged == {half, untracked} and second.json()["next_cursor"] is None


async def test_exports_carry_the_records(
    client: httpx.AsyncClient, rows: Rows, user_id: str, database_url: str
) -> None:
    token = await rows.token()
    form = await rows.order(token)
    bare = await rows.order(token)
    await store(database_url, token, user_id, form, [("invoices", "", INVOICES)])
    ndjson = await client.get(f"/v1/users/{user_id}/orders/export", params={"include": "invoices,shipments"})
    assert ndjson.status_code == 200, ndjson.text
    lines: dict[str, Any] = {
        line["checkout_form_id"]: line for line in map(orjson.loads, ndjson.content.splitlines())
    }
    assert lines[form]["invoices"]["document"] == orjson.loads(INVOICES) and lines[form]["shipments"] is None
    assert lines[bare]["invoices"] is None
    text = (
        await client.get(
            f"/v1/users/{user_id}/orders/export", params={"format": "csv", "include": "invoices"}
        )
    ).text
    table = list(csv.DictReader(io.StringIO(text)))
    by_id = {row["checkout_form_id"]: row for row in table}
    assert orjson.loads(by_id[form]["invoices"])["document"] == orjson.loads(INVOICES)
    assert by_id[bare]["invoices"] == "null" and "shipments" not in by_id[form]
    plain = (await client.get(f"/v1/users/{user_id}/orders/export", params={"format": "csv"})).text
    assert "invoices" not in plain.splitlines()[0]
