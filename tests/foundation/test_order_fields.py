"""The order's one declaration (`core.order_fields`): how it reads a form, and the layers that name the
order's other members by hand agree with each other and with it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from api.order_query import FILTER_VALUES
from api.rendering import CSV_COLUMNS, order_document
from api.schemas.orders import OrderOut
from core.contract import OrderChange, SnapshotEnvelope
from core.order_fields import FILTERS, NAMES, ORDER_FIELDS, SHOWN_NAMES, extract
from db.models import Order
from db.queries.orders import OrderView
from db.queries.replay import RESTORED_COLUMNS
from db.queries.sink import ChangedOrder

AT = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def test_a_form_without_the_members_gives_none_and_empty_lists() -> None:
    values = extract({"id": "x", "lineItems": None, "summary": {"totalToPay": None}})
    assert values == {f.name: [] if f.is_list else None for f in ORDER_FIELDS}


def test_the_latest_purchase_time_is_compared_as_instants_not_texts() -> None:
    values = extract(
        {
            "lineItems": [
                {"id": "a", "boughtAt": "2026-11-30T10:00:00+02:00"},
                {"id": "b", "boughtAt": "2026-11-30T09:30:00Z"},
                {"id": "c"},
            ],
            "summary": {"totalToPay": {"amount": "12.30", "currency": "PLN"}},
        }
    )
    assert values["bought_at"] == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    assert values["line_item_ids"] == ["a", "b", "c"]
    assert values["total_amount"] == Decimal("12.30")


def test_a_member_of_another_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        extract({"status": {"not": "a text"}})


def test_envelope_and_change_carry_every_field() -> None:
    for model in (SnapshotEnvelope, OrderChange):
        for order_field in ORDER_FIELDS:
            assert model.model_fields[order_field.name].annotation == order_field.python


def test_the_sinks_change_and_the_published_change_have_the_same_members() -> None:
    sink = {f.name for f in dataclasses.fields(ChangedOrder)} - {"fields", "order_json"}
    published = set(OrderChange.model_fields) - {"schema_version", "order", *NAMES}
    assert sink == published


def test_a_replay_restores_every_column_of_orders() -> None:
    assert set(RESTORED_COLUMNS) == {column.name for column in Order.__table__.columns} - {"id"}


def test_the_api_document_csv_and_schema_have_the_same_members() -> None:
    row = OrderView(
        tuple(None for _ in SHOWN_NAMES),
        1,
        uuid.uuid4(),
        "form",
        "r1",
        AT,
        "journal",
        AT,
        AT,
        None,
        None,
        None,
        "{}",
    )
    document = order_document(row)
    assert list(document) == list(CSV_COLUMNS)
    assert set(document) == set(OrderOut.model_fields)


def test_the_filters_with_allegros_enumerations_are_declared_filters() -> None:
    assert set(FILTER_VALUES) <= {f.filter for f in FILTERS}
