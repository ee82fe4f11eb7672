"""The poller's retry list of forms that answered 404, and the lookups that decide what became of them.

Every function takes the session first and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Text, any_, case, cast, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import FormRetry, Order, OrderLineItem


@dataclass(frozen=True, slots=True)
class MissingForm:
    """A form that just answered 404, with what we know of it (from the stored order or the event)."""

    checkout_form_id: str
    bought_at: datetime | None
    line_item_ids: Sequence[str] = ()
    event_ids: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """A form on the retry list whose next attempt is due."""

    checkout_form_id: str
    first_missing_at: datetime
    attempts: int
    source: str
    bought_at: datetime | None
    line_item_ids: list[str]
    event_ids: list[str]


async def note_missing(
    session: AsyncSession,
    token_id: UUID,
    forms: Sequence[MissingForm],
    *,
    source: str,
    now: datetime,
    next_attempt_at: datetime,
) -> None:
    """Put forms on the retry list. A form already waiting keeps its schedule (its new event ids are added);
    one that had answered again starts over; one already decided merged or missing stays decided."""
    if not forms:
        return
    statement = insert(FormRetry).values(
        [
            {
                "token_id": token_id,
                "checkout_form_id": form.checkout_form_id,
                "first_missing_at": now,
                "last_attempt_at": now,
                "next_attempt_at": next_attempt_at,
                "attempts": 1,
                "source": source,
                "bought_at": form.bought_at,
                "line_item_ids": list(form.line_item_ids),
                "event_ids": list(form.event_ids),
            }
            for form in forms
        ]
    )
    new = statement.excluded
    restart = FormRetry.outcome == "found"
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[FormRetry.token_id, FormRetry.checkout_form_id],
            set_={
                "first_missing_at": _pick(restart, new.first_missing_at, FormRetry.first_missing_at),
                "last_attempt_at": _pick(restart, new.last_attempt_at, FormRetry.last_attempt_at),
                "next_attempt_at": _pick(restart, new.next_attempt_at, FormRetry.next_attempt_at),
                "attempts": _pick(restart, new.attempts, FormRetry.attempts),
                "outcome": _pick(restart, None, FormRetry.outcome),
                "decided_at": _pick(restart, None, FormRetry.decided_at),
                "event_ids": FormRetry.event_ids.concat(new.event_ids),
                "line_item_ids": func.coalesce(
                    func.nullif(new.line_item_ids, cast([], ARRAY(Text))), FormRetry.line_item_ids
                ),
                "bought_at": func.coalesce(FormRetry.bought_at, new.bought_at),
            },
            where=FormRetry.outcome.is_(None) | restart,
        )
    )


def _pick(condition: Any, then: Any, otherwise: Any) -> Any:
    """`then` where the row restarts, else its own value."""
    return case((condition, then), else_=otherwise)


async def due_retries(
    session: AsyncSession, token_id: UUID, *, now: datetime, limit: int
) -> list[PendingRetry]:
    """Undecided forms of the token whose next attempt is due, oldest first."""
    rows = await session.execute(
        select(
            FormRetry.checkout_form_id,
            FormRetry.first_missing_at,
            FormRetry.attempts,
            FormRetry.source,
            FormRetry.bought_at,
            FormRetry.line_item_ids,
            FormRetry.event_ids,
        )
        .where(FormRetry.token_id == token_id, FormRetry.outcome.is_(None), FormRetry.next_attempt_at <= now)
        .order_by(FormRetry.next_attempt_at)
        .limit(limit)
    )
    return [PendingRetry(*row) for row in rows.all()]


async def next_attempt_at(session: AsyncSession, token_id: UUID) -> datetime | None:
    """When the token's next undecided form is due (None: nothing waits)."""
    row = await session.execute(
        select(func.min(FormRetry.next_attempt_at)).where(
            FormRetry.token_id == token_id, FormRetry.outcome.is_(None)
        )
    )
    value: datetime | None = row.scalar_one()
    return value


async def record_miss(
    session: AsyncSession, token_id: UUID, form_id: str, *, now: datetime, next_attempt_at: datetime
) -> None:
    """One more 404 for a waiting form; try again at `next_attempt_at`."""
    await session.execute(
        update(FormRetry)
        .where(FormRetry.token_id == token_id, FormRetry.checkout_form_id == form_id)
        .values(attempts=FormRetry.attempts + 1, last_attempt_at=now, next_attempt_at=next_attempt_at)
    )


async def decide(
    session: AsyncSession,
    token_id: UUID,
    form_id: str,
    *,
    outcome: str,
    now: datetime,
    successor: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> None:
    """Close a waiting form: `found` (it answered), `merged` (into `successor`) or `missing`."""
    await session.execute(
        update(FormRetry)
        .where(FormRetry.token_id == token_id, FormRetry.checkout_form_id == form_id)
        .values(outcome=outcome, decided_at=now, last_attempt_at=now, successor=successor, evidence=evidence)
    )


async def stored_successor(
    session: AsyncSession, token_id: UUID, form_id: str, line_item_ids: Iterable[str]
) -> tuple[str, list[str]] | None:
    """A stored form other than `form_id` holding one of these line items, with the items it shares."""
    items = list(set(line_item_ids))
    if not items:
        return None
    rows = await session.execute(
        select(OrderLineItem.checkout_form_id, OrderLineItem.line_item_id)
        .join(
            Order,
            (Order.token_id == OrderLineItem.token_id)
            & (Order.checkout_form_id == OrderLineItem.checkout_form_id),
        )
        .where(
            OrderLineItem.token_id == token_id,
            OrderLineItem.line_item_id == any_(cast(items, ARRAY(Text))),
            OrderLineItem.checkout_form_id != form_id,
            Order.superseded_by.is_(None),
        )
        .order_by(OrderLineItem.checkout_form_id)
    )
    shared: dict[str, list[str]] = {}
    for successor, item in rows.all():
        shared.setdefault(successor, []).append(item)
    if not shared:
        return None
    successor = max(shared, key=lambda form: len(shared[form]))
    return successor, sorted(shared[successor])


async def stored_line_items(session: AsyncSession, token_id: UUID, form_id: str) -> list[str]:
    """The line item ids of a stored order (empty when it is not stored)."""
    row = await session.execute(
        select(Order.line_item_ids).where(Order.token_id == token_id, Order.checkout_form_id == form_id)
    )
    items = row.scalar_one_or_none()
    return list(items or [])


async def unmarked_stored_forms(
    session: AsyncSession,
    token_id: UUID,
    user_id: str,
    *,
    bought_from: datetime | None,
    bought_until: datetime,
    seen: set[str],
    limit: int,
) -> list[MissingForm]:
    """Stored orders bought in [from, until], neither superseded nor missing upstream, that are not in
    `seen` (what a complete walk of that window listed); at most `limit`."""
    # user_id too: (user_id, bought_at) is indexed, token_id alone is not.
    query = select(Order.checkout_form_id, Order.bought_at, Order.line_item_ids).where(
        Order.user_id == user_id,
        Order.token_id == token_id,
        Order.bought_at <= bought_until,
        Order.superseded_at.is_(None),
        Order.missing_upstream_since.is_(None),
    )
    if bought_from is not None:
        query = query.where(Order.bought_at >= bought_from)
    rows = await session.execute(query.order_by(Order.bought_at))
    found = [
        MissingForm(form_id, bought_at, list(items or []))
        for form_id, bought_at, items in rows.all()
        if form_id not in seen
    ]
    return found[:limit]
