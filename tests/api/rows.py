"""Committed rows written the way the processor and poller write them, for the API to read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import Order, OrderRevision, SyncHistory, UserToken

BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def checkout_form(form_id: str, *, status: str, updated_at: datetime | None, login: str) -> dict[str, Any]:
    """A small checkout form with the fields the API indexes."""
    return {
        "id": form_id,
        "status": status,
        "buyer": {"login": login, "email": "someone@example.invalid"},
        "fulfillment": {"status": "NEW"},
        "lineItems": [{"id": str(uuid.uuid4()), "boughtAt": "2026-02-01T10:00:00.000Z"}],
        "summary": {"totalToPay": {"amount": "10.00", "currency": "PLN"}},
        "updatedAt": updated_at.isoformat() if updated_at else None,
        "note": {"text": "zażółć gęślą jaźń"},
    }


class Rows:
    """Inserts rows owned by one user."""

    def __init__(self, engine: AsyncEngine, user_id: str) -> None:
        self.engine = engine
        self.user_id = user_id

    async def token(self, *, user_id: str | None = None, status: str = "active", **fields: Any) -> uuid.UUID:
        """A token row; returns its id."""
        token_id = uuid.uuid4()
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(UserToken).values(
                    id=token_id, user_id=user_id or self.user_id, status=status, **fields
                )
            )
        return token_id

    async def order(
        self,
        token_id: uuid.UUID,
        *,
        user_id: str | None = None,
        form_id: str | None = None,
        minutes: float | None = 0,
        bought_minutes: float | None = 0,
        status: str = "READY_FOR_PROCESSING",
        fulfillment_status: str = "NEW",
        buyer_login: str = "buyer",
        columns: dict[str, Any] | None = None,
    ) -> str:
        """An order whose updated_at / bought_at are BASE_TIME plus minutes (None stores NULL); `columns`
        sets other columns of `orders`."""
        form_id = form_id or str(uuid.uuid4())
        updated_at = BASE_TIME + timedelta(minutes=minutes) if minutes is not None else None
        bought_at = BASE_TIME + timedelta(minutes=bought_minutes) if bought_minutes is not None else None
        form = checkout_form(form_id, status=status, updated_at=updated_at, login=buyer_login)
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(Order)
                .values(
                    token_id=token_id,
                    user_id=user_id or self.user_id,
                    checkout_form_id=form_id,
                    revision=uuid.uuid4().hex[:8],
                    status=status,
                    fulfillment_status=fulfillment_status,
                    buyer_login=buyer_login,
                    bought_at=bought_at,
                    updated_at=updated_at,
                    total_amount="10.00",
                    currency="PLN",
                    order_data=form,
                    source="journal",
                )
                .values(**(columns or {}))
            )
        return form_id

    async def revision(self, token_id: uuid.UUID, form_id: str, revision: str, *, minutes: float) -> None:
        """One captured revision."""
        captured = BASE_TIME + timedelta(minutes=minutes)
        form = checkout_form(form_id, status="BOUGHT", updated_at=captured, login="buyer")
        form["revision"] = revision
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(OrderRevision).values(
                    token_id=token_id,
                    checkout_form_id=form_id,
                    revision=revision,
                    updated_at=captured,
                    order_data=form,
                    captured_at=captured,
                    source="journal",
                )
            )

    async def sync_run(
        self, token_id: uuid.UUID, *, kind: str, minutes: float, status: str = "finished"
    ) -> uuid.UUID:
        """One sync_history row."""
        run_id = uuid.uuid4()
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(SyncHistory).values(
                    id=run_id,
                    token_id=token_id,
                    user_id=self.user_id,
                    kind=kind,
                    status=status,
                    started_at=BASE_TIME + timedelta(minutes=minutes),
                    events_read=3,
                    orders_fetched=2,
                    orders_changed=1,
                    requests_made=4,
                )
            )
        return run_id

    async def token_row(self, token_id: uuid.UUID) -> dict[str, Any]:
        """The stored token row, secrets included."""
        async with self.engine.connect() as connection:
            row = (
                (await connection.execute(select(UserToken).where(UserToken.id == token_id))).mappings().one()
            )
        return dict(row)

    async def count_orders(self, token_id: uuid.UUID) -> int:
        """Orders stored for a token."""
        async with self.engine.connect() as connection:
            result = await connection.execute(select(Order.id).where(Order.token_id == token_id))
            return len(result.all())
