"""Raw JSON for orders: the stored form is spliced in as text (orjson.Fragment), never decoded."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from core.order_fields import KEY, SHOWN_NAMES, STORED, VERSION, decimal_text
from db.queries.orders import OrderView, RevisionRow

# The order document's members in order (the form's last).
CSV_COLUMNS = (*KEY, *VERSION, *SHOWN_NAMES, *STORED, "order")


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
        "updated_at": row.updated_at,
        **dict(zip(SHOWN_NAMES, row.fields, strict=True)),
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
    """Serialise a document holding fragments, UUIDs, datetimes and decimals (as their text)."""
    return orjson.dumps(document, default=decimal_text)


def ndjson_lines(rows: Sequence[OrderView]) -> bytes:
    """One JSON document per order, newline-terminated.

    A form is its text as Allegro sent it; should that text hold line breaks, they are whitespace
    between tokens (a JSON string cannot hold a raw one), and here they become spaces so that each
    order stays one line. Every character of the form's value is kept."""
    return b"".join(
        orjson.dumps(
            order_document(row, one_line=True), default=decimal_text, option=orjson.OPT_APPEND_NEWLINE
        )
        for row in rows
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
                _iso(row.updated_at),
                *(_iso(value) for value in row.fields),
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


def _iso(value: Any) -> Any:
    """A datetime as its RFC 3339 text; any other value as it is."""
    return value.isoformat() if isinstance(value, datetime) else value


def _csv_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()
