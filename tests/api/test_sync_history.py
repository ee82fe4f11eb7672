"""Sync history: newest first, filters, pages, scoping."""

from __future__ import annotations

import uuid

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
    assert page.next_cursor is None and page.items[0].orders_changed == 1

    by_token = (await client.get(path, params={"token_id": str(token)})).json()
    assert [run["id"] for run in by_token["items"]] == [str(journal), str(backfill)]
    by_kind = (await client.get(path, params={"kind": "journal"})).json()
    assert [run["id"] for run in by_kind["items"]] == [str(other), str(journal)]
    by_status = (await client.get(path, params={"status": "failed"})).json()
    assert [run["id"] for run in by_status["items"]] == [str(journal)]

    first = (await client.get(path, params={"limit": 2})).json()
    assert [run["id"] for run in first["items"]] == [str(other), str(journal)]
    second = (await client.get(path, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [run["id"] for run in second["items"]] == [str(backfill)] and second["next_cursor"] is None


async def test_sync_history_pages_by_keyset_through_ties_and_new_runs(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    # Seven runs, three of them starting at the same moment: the id breaks the tie.
    runs = [await rows.sync_run(token, kind="journal", minutes=m) for m in (1, 2, 3, 3, 3, 4, 5)]
    path = f"/v1/users/{user_id}/sync-history"
    expected = [str(run) for run in sorted(runs, key=lambda r: (_minutes(runs, r), r.hex), reverse=True)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(path, params=params)).json()
        seen += [run["id"] for run in page["items"]]
        if len(seen) == 2:
            # A run recorded while paging is newer: it never shifts or repeats the following pages.
            await rows.sync_run(token, kind="journal", minutes=9)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected

    first = (await client.get(path, params={"limit": 2})).json()
    # A cursor continues only the query that made it, and only as issued.
    other_filter = await client.get(
        path, params={"limit": 2, "kind": "backfill", "cursor": first["next_cursor"]}
    )
    assert other_filter.status_code == 400
    assert other_filter.json()["errors"][0]["type"] == "invalid_cursor"
    tampered = first["next_cursor"][:-2] + ("AA" if not first["next_cursor"].endswith("AA") else "BB")
    assert (await client.get(path, params={"cursor": tampered})).status_code == 400
    other_user = await client.get(
        f"/v1/users/{user_id}-other/sync-history", params={"cursor": first["next_cursor"]}
    )
    assert other_user.status_code == 400


def _minutes(runs: list[uuid.UUID], run: uuid.UUID) -> int:
    return (1, 2, 3, 3, 3, 4, 5)[runs.index(run)]


async def test_sync_history_is_scoped_and_validated(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token = await rows.token()
    await rows.sync_run(token, kind="journal", minutes=1)
    assert (await client.get(f"/v1/users/{user_id}-other/sync-history")).json()["items"] == []
    for params in ({"kind": "nightly"}, {"limit": 501}, {"cursor": "x" * 513}, {"token_id": "x"}):
        response = await client.get(f"/v1/users/{user_id}/sync-history", params=params)
        assert response.status_code == 422, params
