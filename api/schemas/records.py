"""Order-record models (shipments, parcel tracking, invoices) as the OpenAPI document promises them.

Responses are written as raw JSON around each record's stored text; these models describe them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.orders import OrderOut

RECORD_DESCRIPTION = (
    "The record exactly as Allegro returned it: the answer of GET /order/checkout-forms/{id}/shipments or "
    "/invoices, or one `waybills[]` item of GET /order/carriers/{carrierId}/tracking."
)


class RecordOut(BaseModel):
    """The current version of one order record."""

    kind: Literal["shipments", "invoices", "tracking"]
    record_key: str = Field(description="`{carrierId}:{waybill}` for tracking, empty otherwise.")
    carrier_id: str | None = Field(default=None, description="Tracking only.", examples=["DPD"])
    waybill: str | None = Field(default=None, description="Tracking only.")
    fetched_at: datetime = Field(description="When this content was fetched (the newest fetch).")
    first_fetched_at: datetime = Field(description="When the record was first fetched at all.")
    source: str = Field(description="The sync run kind that fetched this content.")
    content_sha256: str = Field(description="SHA-256 (hex) of the record's JSON text.")
    document: dict[str, Any] = Field(description=RECORD_DESCRIPTION)


class RecordVersionOut(BaseModel):
    """One distinct content a record had."""

    record_key: str
    first_fetched_at: datetime
    source: str
    content_sha256: str
    document: dict[str, Any] = Field(description=RECORD_DESCRIPTION)


class RecordList(BaseModel):
    """An order's records of one kind: the current ones and every version, oldest first."""

    token_id: UUID
    checkout_form_id: str
    kind: Literal["shipments", "invoices", "tracking"]
    items: list[RecordOut]
    versions: list[RecordVersionOut]


class OrderWithRecordsOut(OrderOut):
    """An order; with `include`, the records asked for (absent members were not asked for)."""

    shipments: RecordOut | None = Field(
        default=None, description="With include=shipments; null: none stored."
    )
    invoices: RecordOut | None = Field(default=None, description="With include=invoices; null: none stored.")
    tracking: list[RecordOut] | None = Field(default=None, description="With include=tracking: per waybill.")


class OrderWithRecordsPage(BaseModel):
    """One keyset page of orders (`OrderPage`), each with the records `include` asked for."""

    items: list[OrderWithRecordsOut]
    next_cursor: str | None = Field(description="None on the last page.")
