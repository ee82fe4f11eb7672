"""Order, revision, history and health models.

Order and revision responses are written as raw JSON (the stored form is spliced in as text); these
models are what the OpenAPI document promises, and the tests check the bytes against them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, create_model

from core.order_fields import SHOWN, OrderField
from core.states import SyncKind, SyncStatus

CHECKOUT_FORM_DESCRIPTION = "The checkout form exactly as Allegro returned it."


def _shown_field(order_field: OrderField) -> tuple[Any, Any]:
    # A decimal is written as its text (`core.order_fields.decimal_text`).
    python = str | None if order_field.python == Decimal | None else order_field.python
    examples = list(order_field.examples) or None
    return python, Field(description=order_field.description, examples=examples)


if TYPE_CHECKING:

    class _OrderFieldsOut(BaseModel):
        def __getattr__(self, name: str) -> Any: ...

else:
    _OrderFieldsOut = create_model(
        "_OrderFieldsOut", __module__=__name__, **{f.name: _shown_field(f) for f in SHOWN}
    )


class OrderOut(_OrderFieldsOut):
    """One stored order: its indexed fields (`core.order_fields`) and the checkout form."""

    token_id: UUID
    checkout_form_id: str = Field(examples=["29738e61-7f6a-11e8-ac45-09db60ede9d6"])
    revision: str
    updated_at: datetime | None
    source: str = Field(description="How the latest revision arrived (journal, backfill, reconcile, resync).")
    first_seen_at: datetime
    last_synced_at: datetime
    superseded_at: datetime | None = Field(description="Set when Allegro merged the form into another.")
    superseded_by: str | None
    missing_upstream_since: datetime | None = Field(description="Set when Allegro no longer has the form.")
    order: dict[str, Any] = Field(description=CHECKOUT_FORM_DESCRIPTION)


class OrderPage(BaseModel):
    """One keyset page; pass `next_cursor` back as `cursor` with the same filters for the next one."""

    items: list[OrderOut]
    next_cursor: str | None = Field(description="None on the last page.")


class RevisionOut(BaseModel):
    """One captured revision of an order."""

    revision: str
    updated_at: datetime | None
    captured_at: datetime
    source: str
    order: dict[str, Any] = Field(description=CHECKOUT_FORM_DESCRIPTION)


class RevisionList(BaseModel):
    """Revisions of one order (of one token), newest capture first."""

    token_id: UUID
    checkout_form_id: str
    items: list[RevisionOut]


class SyncRunOut(BaseModel):
    """One sync run."""

    id: UUID
    token_id: UUID
    kind: SyncKind
    status: SyncStatus
    started_at: datetime
    finished_at: datetime | None
    events_read: int
    orders_fetched: int = Field(description="Checkout forms the run read from Allegro.")
    orders_changed: int = Field(
        description="Forms the run published for storing: new or changed as far as the poller could tell "
        "(a resync publishes every form it reads). The processor stores only real changes: a published "
        "form whose content is already stored changes nothing (`processor_orders_changed_total`)."
    )
    requests_made: int
    cursor_from: str | None
    cursor_to: str | None
    error: str | None


class SyncRunPage(BaseModel):
    """One keyset page of sync runs, newest first; pass `next_cursor` back as `cursor` with the same
    filters for the next one."""

    items: list[SyncRunOut]
    next_cursor: str | None = Field(description="None on the last page.")


class Alive(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class Check(BaseModel):
    """One dependency's state."""

    ok: bool
    error: str | None = None


class Readiness(BaseModel):
    """Whether every dependency answered."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Check] = Field(examples=[{"postgresql": {"ok": True}, "kafka": {"ok": True}}])
