"""The keyset queries are answered by the (user_id, time DESC, id DESC) indexes, in index order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.queries.orders import Keyset, OrderFilters, SortKey, order_page_statement

INDEXES = {"updated_at": "ix_orders_user_id_updated_at_id", "bought_at": "ix_orders_user_id_bought_at_id"}


@pytest.mark.parametrize("sort", ["updated_at", "bought_at"])
@pytest.mark.parametrize("after", [None, Keyset(datetime(2026, 1, 1, tzinfo=UTC), 10), Keyset(None, 10)])
async def test_keyset_page_reads_the_index_without_sorting(
    session: AsyncSession, sort: SortKey, after: Keyset | None
) -> None:
    statement = order_page_statement(user_id="u", filters=OrderFilters(), sort=sort, after=after, limit=50)
    compiled = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    # The plan chosen depends on the table's statistics (an empty table prefers a sequential scan, a user
    # estimated at one row a sort of that row), which other tests change. Penalise both to see whether a
    # path without them exists: when none does, PostgreSQL still plans the sort, and the test fails.
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    await session.execute(text("SET LOCAL enable_sort = off"))
    plan = "\n".join((await session.execute(text(f"EXPLAIN {compiled}"))).scalars())
    assert INDEXES[sort] in plan, plan
    assert "Sort" not in plan, plan
    if after is not None and after.value is not None:
        # The keyset bound is part of the index condition: the scan starts at the cursor, not at the top.
        index_condition = next(line for line in plan.splitlines() if "Index Cond" in line)
        assert f"ROW({sort}, id) < ROW(" in index_condition, plan
