"""The order's fields read off the checkout form: the one declaration every layer derives its shape from.

Each `OrderField` says what the poller extracts from Allegro's checkout form (a path of the form's JSON
member names; `*` walks a list), the Python type the Kafka contract validates it as, the column of
`orders` that holds it (with the PostgreSQL array type the sink sends it in), and what the API does
with it. From `ORDER_FIELDS` come: the members of `allegro.order-snapshots` envelopes and of
`allegro.orders` changes (`core.contract`), the `orders` columns (`db.models`), the sink's arrays and
statements (`db.queries.sink`), the replay's restore (`db.queries.replay`), the API's order document,
CSV columns and filters (`api`). Adding a field is one entry here and one migration adding its column.

The fields the order's identity, history and marks are made of (token, form id, revision, `updatedAt`,
capture times, gone marks) are not here: every layer handles them by name, since they decide what is
stored and what is current (`processors.newness`).

Texts hold U+FFFD where the form holds U+0000 or a lone surrogate (`allegro_api.form_text`), which
PostgreSQL's text columns and JSON encoders refuse.

Source of the form's member names: Allegro's checkout form schema, `reference/allegro/openapi-orders.yaml`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Annotated, Any

from pydantic import AwareDatetime, StringConstraints, TypeAdapter
from sqlalchemy import DateTime, Numeric, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

ShortText = Annotated[str, StringConstraints(max_length=256)]
Extract = Callable[[Mapping[str, Any]], Any]


def member(*path: str) -> Extract:
    """The value at `path` of the form's JSON (None where a member is missing or null)."""

    def extract(form: Mapping[str, Any]) -> Any:
        value: Any = form
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        return value

    return extract


def each(items: str, name: str) -> Extract:
    """`name` of every object of the list `items` that has one (an empty list where there is none)."""

    def extract(form: Mapping[str, Any]) -> list[Any]:
        values = form.get(items) or ()
        return [v[name] for v in values if isinstance(v, Mapping) and v.get(name) is not None]

    return extract


_INSTANTS: TypeAdapter[list[AwareDatetime]] = TypeAdapter(list[AwareDatetime])


def latest(items: str, name: str) -> Extract:
    """The latest instant `name` among the objects of the list `items` (None where none has one)."""
    instants = each(items, name)

    def extract(form: Mapping[str, Any]) -> datetime | None:
        times = _INSTANTS.validate_python(instants(form))
        return max(times) if times else None

    return extract


@dataclass(frozen=True)
class OrderField:
    """One field of the order read off its checkout form.

    `name` names the envelope and change member, the `orders` column and the API document member;
    `python` is the type the contract validates it as (None allowed unless it is a list); `column` the
    column's SQLAlchemy type; `sql` the PostgreSQL type of the array the sink sends it in (a list goes as
    JSON text, since unnest() cannot take ragged arrays); `shown`: in the API order document and CSV;
    `filter`: the name of the orders list's equality filter on it (None: not filterable)."""

    name: str
    python: Any
    extract: Extract
    column: TypeEngine[Any]
    sql: str
    description: str
    examples: tuple[Any, ...] = ()
    shown: bool = True
    filter: str | None = None
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.python))

    @property
    def is_list(self) -> bool:
        """True for a list of texts (`line_item_ids`): never None, stored as `text[]`."""
        return self.sql == "text[]"


ORDER_FIELDS: tuple[OrderField, ...] = (
    OrderField(
        "status",
        ShortText | None,
        member("status"),
        String(32),
        "text",
        "Allegro's checkout form status.",
        ("READY_FOR_PROCESSING",),
        filter="status",
    ),
    OrderField(
        "fulfillment_status",
        ShortText | None,
        member("fulfillment", "status"),
        String(32),
        "text",
        "The seller's fulfilment status.",
        ("SENT",),
        filter="fulfillment_status",
    ),
    OrderField(
        "buyer_login",
        ShortText | None,
        member("buyer", "login"),
        String(256),
        "text",
        "The buyer's Allegro login.",
        filter="buyer_login",
    ),
    OrderField(
        "bought_at",
        AwareDatetime | None,
        latest("lineItems", "boughtAt"),
        DateTime(timezone=True),
        "timestamptz",
        "The latest line item's purchase time, which Allegro's boughtAt filters apply to.",
    ),
    OrderField(
        "total_amount",
        Decimal | None,
        member("summary", "totalToPay", "amount"),
        Numeric(16, 2),
        "numeric",
        "What the buyer pays in total; a decimal as a string in JSON.",
        ("123.45",),
    ),
    OrderField(
        "currency",
        Annotated[str, StringConstraints(max_length=8)] | None,
        member("summary", "totalToPay", "currency"),
        String(8),
        "text",
        "The total's currency.",
        ("PLN",),
    ),
    OrderField(
        "line_item_ids",
        list[ShortText],
        each("lineItems", "id"),
        ARRAY(Text),
        "text[]",
        "The form's line item ids, which survive a merge of forms.",
        shown=False,
    ),
    OrderField(
        "delivery_method_name",
        str | None,
        member("delivery", "method", "name"),
        Text(),
        "text",
        "The delivery method the buyer chose, as Allegro names it.",
        ("Allegro Paczkomaty InPost",),
        filter="delivery_method",
    ),
)

# The order's members that are not read off its form, by group, named alike in every layer (the columns
# of `orders`, the members of a change and of the API document).
KEY = ("token_id", "checkout_form_id")
OWNER = ("user_id", "seller_id")
VERSION = ("revision", "updated_at")
# What storing adds: how the latest revision came, when the order was first and last seen, its gone marks.
STORED = (
    "source",
    "first_seen_at",
    "last_synced_at",
    "superseded_at",
    "superseded_by",
    "missing_upstream_since",
)

NAMES: tuple[str, ...] = tuple(f.name for f in ORDER_FIELDS)
BY_NAME: dict[str, OrderField] = {f.name: f for f in ORDER_FIELDS}
FILTERS: tuple[OrderField, ...] = tuple(f for f in ORDER_FIELDS if f.filter is not None)
SHOWN: tuple[OrderField, ...] = tuple(f for f in ORDER_FIELDS if f.shown)
SHOWN_NAMES: tuple[str, ...] = tuple(f.name for f in SHOWN)

# The order's field values as a tuple in `ORDER_FIELDS` order, read off any object that has them.
values_of: Callable[[Any], tuple[Any, ...]] = attrgetter(*NAMES)


def extract(form: Mapping[str, Any], clean: Callable[[Any], Any] = lambda value: value) -> dict[str, Any]:
    """Every field's value read off a decoded checkout form, passed through `clean` (which makes texts
    storable), then validated as its type.

    Raises pydantic.ValidationError when the form holds a value of another type there."""
    return {f.name: f.adapter.validate_python(clean(f.extract(form))) for f in ORDER_FIELDS}


def default_of(order_field: OrderField) -> Any:
    """A field's value when a form does not give it (an empty list, else None)."""
    return [] if order_field.is_list else None


def decimal_text(value: object) -> str:
    """How a field's Decimal is written in JSON: as its exact text (orjson's `default`, which it calls
    for what it cannot write itself). Raises TypeError for anything else."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
