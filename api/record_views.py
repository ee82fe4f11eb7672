"""Order records in API answers and exports: the `include` parameter and the documents around each
record's stored text (spliced in as an orjson.Fragment, never decoded)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Query

from api.problems import FieldError, ProblemError
from api.rendering import CSV_COLUMNS, csv_lines, order_document
from core.order_fields import decimal_text
from core.order_records import RECORD_KINDS, RecordKind, split_tracking_key
from db.queries.order_records import StoredRecord, StoredVersion, records_of_orders
from db.queries.orders import OrderView

IncludeParam = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Records to add, comma separated: `shipments`, `tracking`, `invoices`.",
        examples=["shipments,tracking,invoices"],
    ),
]
RECORD_CSV_COLUMNS = ("shipments", "tracking", "invoices")


def parse_include(value: str | None) -> tuple[RecordKind, ...]:
    """The kinds asked for, in a fixed order; raises ProblemError 422 for an unknown one."""
    if not value:
        return ()
    asked = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in asked if part not in RECORD_KINDS]
    if unknown:
        detail = f"include: unknown {', '.join(repr(u) for u in unknown)}; known: {', '.join(RECORD_KINDS)}"
        errors = [FieldError(loc=["query", "include"], msg=detail, type="enum")]
        raise ProblemError(422, detail, slug="validation-failed", errors=errors)
    return tuple(kind for kind in RECORD_KINDS if kind in asked)


def record_document(record: StoredRecord) -> dict[str, Any]:
    """The API shape of a record (RecordOut)."""
    document: dict[str, Any] = {"kind": record.kind, "record_key": record.record_key}
    if record.kind == "tracking":
        carrier_id, waybill = split_tracking_key(record.record_key)
        document |= {"carrier_id": carrier_id, "waybill": waybill}
    return document | {
        "fetched_at": record.fetched_at,
        "first_fetched_at": record.first_fetched_at,
        "source": record.source,
        "content_sha256": record.content_sha256,
        "document": orjson.Fragment(record.document),
    }


def version_document(version: StoredVersion) -> dict[str, Any]:
    """The API shape of a record version (RecordVersionOut)."""
    return {
        "record_key": version.record_key,
        "first_fetched_at": version.first_fetched_at,
        "source": version.source,
        "content_sha256": version.content_sha256,
        "document": orjson.Fragment(version.document),
    }


def records_members(records: Sequence[StoredRecord], include: Sequence[RecordKind]) -> dict[str, Any]:
    """The members an order document gets for `include`: `shipments` and `invoices` (a record or None),
    `tracking` (a list)."""
    members: dict[str, Any] = {}
    for kind in include:
        found = [record_document(r) for r in records if r.kind == kind]
        members[kind] = found if kind == "tracking" else (found[0] if found else None)
    return members


def group_by_order(records: Sequence[StoredRecord]) -> dict[tuple[Any, str], list[StoredRecord]]:
    """Records by (token id, checkout form id)."""
    grouped: dict[tuple[Any, str], list[StoredRecord]] = {}
    for record in records:
        grouped.setdefault((record.token_id, record.checkout_form_id), []).append(record)
    return grouped


def csv_record_cells(records: Sequence[StoredRecord], include: Sequence[RecordKind]) -> list[str]:
    """The CSV cells of RECORD_CSV_COLUMNS asked for: each a JSON text (a record, a list, or null)."""
    members = records_members(records, include)
    return [orjson.dumps(members[kind]).decode() for kind in RECORD_CSV_COLUMNS if kind in include]


def csv_text(rows: Sequence[Sequence[Any]]) -> bytes:
    """CSV lines."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def with_record_cells(order_lines: bytes, cells: Sequence[Sequence[str]]) -> bytes:
    """Order CSV lines (`api.rendering.csv_lines`) with each row's record cells appended, row for row."""
    rows = list(csv.reader(io.StringIO(order_lines.decode(), newline="")))
    if len(rows) != len(cells):
        raise ValueError(f"{len(rows)} CSV rows for {len(cells)} orders")
    return csv_text([[*row, *extra] for row, extra in zip(rows, cells, strict=True)])


def ndjson_with_records(
    rows: Sequence[OrderView], records: Sequence[StoredRecord], include: Sequence[RecordKind]
) -> bytes:
    """NDJSON lines of orders (`api.rendering.order_document`, one line each) with their records."""
    grouped = group_by_order(records)
    return b"".join(
        orjson.dumps(
            order_document(row, one_line=True)
            | records_members(grouped.get((row.token_id, row.checkout_form_id), []), include),
            default=decimal_text,
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for row in rows
    )


def csv_with_records(
    rows: Sequence[OrderView], records: Sequence[StoredRecord], include: Sequence[RecordKind]
) -> bytes:
    """CSV lines of orders (`api.rendering.csv_lines`) with a JSON column per record kind asked for."""
    grouped = group_by_order(records)
    cells = [csv_record_cells(grouped.get((row.token_id, row.checkout_form_id), []), include) for row in rows]
    return with_record_cells(csv_lines(rows), cells)


def csv_header_with_records(include: Sequence[RecordKind]) -> bytes:
    """The CSV header with the record columns asked for."""
    return csv_text([[*CSV_COLUMNS, *(kind for kind in RECORD_CSV_COLUMNS if kind in include)]])


async def with_records(
    reads: asyncpg.Pool,
    rows: Sequence[OrderView],
    documents: Sequence[dict[str, Any]],
    include: Sequence[RecordKind],
) -> list[dict[str, Any]]:
    """The order documents of `rows` (same order) with their records, read in one query."""
    records = await records_of_orders(reads, [(row.token_id, row.checkout_form_id) for row in rows], include)
    grouped = group_by_order(records)
    return [
        document | records_members(grouped.get((row.token_id, row.checkout_form_id), []), include)
        for row, document in zip(rows, documents, strict=True)
    ]
