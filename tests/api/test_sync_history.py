"""Sync history: newest first, filters, pages, scoping."""

from __future__ import annotations

import httpx

from api.schemas.orders import SyncRunPage
from tests.api.rows import Rows


async def test_sync_runs_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token, other_token = await rows.token(), await rows.token()
    backfill = await rows.sync_run(token, kind="backfill", minutes=1)
    journal = await rows.sync_run(token, kind="journal", minutes=2, status="failed")
    other = await rows.sync_run(other_token, kind="journal", minutes=3)
    path = f"/v1/users/{user_id}/sync-history"

    page = SyncRunPage.model_validate_json((await client.get(path)).content)
    assert [run.id for run in page.items] == [other, journal, backfill]
    assert page.next_offset is None and page.items[0].orders_changed == 1

    by_token = (await client.get(path, params={"token_id": str(token)})).json()
    assert [run["id"] for run in by_token["items"]] == [str(journal), str(backfill)]
    by_kind = (await client.get(path, params={"kind": "journal"})).json()
    assert [run["id"] for run in by_kind["items"]] == [str(other), str(journal)]
    by_status = (await client.get(path, params={"status": "failed"})).json()
    assert [run["id"] for run in by_status["items"]] == [str(journal)]

    first = (await client.get(path, params={"limit": 2})).json()
    assert first["next_offset"] == 2
    second = (await client.get(path, params={"limit": 2, "offset": 2})).json()
    assert [run["id"] for run in second["items"]] == [str(backfill)] and second["next_offset"] is None


async def test_sync_history_is_scoped_and_validated(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    await rows.sync_run(token, kind="journal", minutes=1)
    assert (await client.get(f"/v1/users/{user_id}-other/sync-history")).json()["items"] == []
    for params in ({"kind": "nightly"}, {"limit": 501}, {"offset": -1}, {"token_id": "x"}):
        response = await client.get(f"/v1/users/{user_id}/sync-history", params=params)
        assert response.status_code == 422, params
