"""Raw JSON for orders: the stored form is spliced in as text (orjson.Fragment), never decoded."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from db.queries.orders import OrderView, RevisionRow

CSV_COLUMNS = (
    "token_id",
    "checkout_form_id",
    "revision",
    "status",
    "fulfillment_status",
    "buyer_login",
    "bought_at",
    "updated_at",
    "total_amount",
    "currency",
    "source",
    "first_seen_at",
    "last_synced_at",
    "superseded_at",
    "superseded_by",
    "missing_upstream_since",
    "order",
)


class RawJSONResponse(JSONResponse):
    """A response whose body is already JSON bytes (a JSONResponse, so OpenAPI shows the model)."""

    def render(self, content: Any) -> bytes:
        """Pass the prepared bytes through."""
        if not isinstance(content, bytes):
            raise TypeError("RawJSONResponse takes JSON bytes")
        return content


def order_document(row: OrderView, *, one_line: bool = False) -> dict[str, Any]:
    """The API shape of an order (OrderOut), the form as a fragment of its stored text (`one_line`:
    line breaks between its tokens become spaces)."""
    return {
        "token_id": str(row.token_id),
        "checkout_form_id": row.checkout_form_id,
        "revision": row.revision,
        "status": row.status,
        "fulfillment_status": row.fulfillment_status,
        "buyer_login": row.buyer_login,
        "bought_at": row.bought_at,
        "updated_at": row.updated_at,
        "total_amount": str(row.total_amount) if row.total_amount is not None else None,
        "currency": row.currency,
        "source": row.source,
        "first_seen_at": row.first_seen_at,
        "last_synced_at": row.last_synced_at,
        "superseded_at": row.superseded_at,
        "superseded_by": row.superseded_by,
        "missing_upstream_since": row.missing_upstream_since,
        "order": orjson.Fragment(_one_line(row.order_data) if one_line else row.order_data),
    }


def revision_document(row: RevisionRow) -> dict[str, Any]:
    """The API shape of a revision (RevisionOut)."""
    return {
        "revision": row.revision,
        "updated_at": row.updated_at,
        "captured_at": row.captured_at,
        "source": row.source,
        "order": orjson.Fragment(row.order_data),
    }


def json_bytes(document: Any) -> bytes:
    """Serialise a document holding fragments, UUIDs and datetimes."""
    return orjson.dumps(document)


def ndjson_lines(rows: Sequence[OrderView]) -> bytes:
    """One JSON document per order, newline-terminated.

    A form is its text as Allegro sent it; should that text hold line breaks, they are whitespace
    between tokens (a JSON string cannot hold a raw one), and here they become spaces so that each
    order stays one line. Every character of the form's value is kept."""
    return b"".join(
        orjson.dumps(order_document(row, one_line=True), option=orjson.OPT_APPEND_NEWLINE) for row in rows
    )


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ") if "\n" in text or "\r" in text else text


def csv_header() -> bytes:
    """The CSV header line."""
    return _csv_lines([CSV_COLUMNS])


def csv_lines(rows: Sequence[OrderView]) -> bytes:
    """CSV rows; the form goes in the last column as JSON text."""
    return _csv_lines(
        [
            (
                row.token_id,
                row.checkout_form_id,
                row.revision,
                row.status,
                row.fulfillment_status,
                row.buyer_login,
                _iso(row.bought_at),
                _iso(row.updated_at),
                row.total_amount,
                row.currency,
                row.source,
                _iso(row.first_seen_at),
                _iso(row.last_synced_at),
                _iso(row.superseded_at),
                row.superseded_by,
                _iso(row.missing_upstream_since),
                row.order_data,
            )
            for row in rows
        ]
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _csv_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()
