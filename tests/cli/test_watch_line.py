"""`allegro-backup watch` lines say whose order changed, and print user ids as they are."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from rich.console import Console

from cli.watch import change_line
from core.contract import OrderChange


def _change(user_id: str, *, total: Decimal | None) -> OrderChange:
    return OrderChange(
        change="updated",
        token_id=UUID("d82792cd-0000-4000-8000-000000000001"),
        user_id=user_id,
        seller_id="seller-1",
        checkout_form_id="29738e61-7f6a-11e8-ac45-09db60ede9d6",
        revision="rev-2",
        captured_at=datetime(2026, 11, 30, 9, 15, 7, tzinfo=UTC),
        source="journal",
        order={"id": "29738e61-7f6a-11e8-ac45-09db60ede9d6"},
        # The order's fields (core.order_fields) are members made from the declaration.
        **{
            "status": "READY_FOR_PROCESSING",
            "total_amount": total,
            "currency": "PLN" if total is not None else None,
        },
    )


def test_a_line_names_the_user_the_token_the_order_and_its_state() -> None:
    line = change_line(_change("shop-42", total=Decimal("123.45")))
    assert line == (
        "09:15:07 updated    user shop-42 token d82792cd 29738e61-7f6a-11e8-ac45-09db60ede9d6 rev rev-2 "
        "READY_FOR_PROCESSING - 123.45 PLN"
    )


def test_a_user_id_that_looks_like_console_markup_is_printed_as_it_is() -> None:
    out = io.StringIO()
    console = Console(file=out, width=300, color_system=None)
    console.print(change_line(_change("[bold]shop[/bold]", total=None)), markup=False, highlight=False)
    assert "user [bold]shop[/bold] token d82792cd" in out.getvalue()
    assert out.getvalue().rstrip().endswith("READY_FOR_PROCESSING -")
