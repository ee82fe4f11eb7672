"""The four real sandbox list responses parse, and every form keeps its JSON unchanged."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

import reference
from allegro_api import CheckoutFormPage, FormFacts, FormSnapshot

REPO_ROOT = Path(__file__).resolve().parents[2]


def samples_dir() -> Path:
    """The Allegro sandbox samples carried in the repository (`reference/allegro/samples`)."""
    return reference.ALLEGRO_SAMPLES


SAMPLES = sorted(samples_dir().glob("checkout-forms-*.json"))


def test_the_four_samples_are_present() -> None:
    assert len(SAMPLES) == 4, f"expected four samples in {samples_dir()}"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_sample_page_parses_with_typed_fields(sample: Path) -> None:
    content = sample.read_bytes()
    original = orjson.loads(content)
    page = CheckoutFormPage.from_json(content, offset=0, limit=100)
    assert page.count == original["count"]
    assert page.total_count == original["totalCount"]
    assert len(page.forms) == len(original["checkoutForms"]) > 0
    for snapshot, form_dict in zip(page.forms, original["checkoutForms"], strict=True):
        form = snapshot.form
        assert form.id == form_dict["id"]
        assert form.revision == form_dict["revision"]
        assert form.status == form_dict["status"]
        assert form.buyer is not None
        assert form.buyer.login == form_dict["buyer"]["login"]
        assert form.buyer.id == form_dict["buyer"]["id"]
        assert form.fulfillment is not None
        assert form.fulfillment.status == form_dict["fulfillment"]["status"]
        assert form.summary is not None and form.summary.total_to_pay is not None
        assert form.summary.total_to_pay.amount == Decimal(form_dict["summary"]["totalToPay"]["amount"])
        assert form.line_item_ids == [item["id"] for item in form_dict["lineItems"]]
        assert form.updated_at is not None and form.updated_at.tzinfo is not None
        assert form.bought_at is not None and form.bought_at.tzinfo is not None
        # Untyped parts of the form stay reachable as extras.
        assert form.model_extra is not None and "delivery" in form.model_extra


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_sample_forms_keep_their_exact_bytes_and_key_order(sample: Path) -> None:
    body = sample.read_bytes()
    original = orjson.loads(body)
    page = CheckoutFormPage.from_json(body, offset=0, limit=100)
    for snapshot, form_dict in zip(page.forms, original["checkoutForms"], strict=True):
        # The samples are indented: each form is its own stretch of the page, whitespace included.
        assert snapshot.raw in body and snapshot.raw.startswith(b"{") and snapshot.raw.endswith(b"}")
        assert snapshot.raw != orjson.dumps(form_dict)
        assert snapshot.as_dict() == form_dict
        assert list(snapshot.as_dict()) == list(form_dict)  # key order kept
        assert b"null" in snapshot.raw  # explicit nulls are stored, not dropped


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_snapshots_keep_the_facts_of_the_validated_form(sample: Path) -> None:
    page = CheckoutFormPage.from_json(sample.read_bytes(), offset=0, limit=100)
    for snapshot in page.forms:
        form = snapshot.form
        assert snapshot.facts == FormFacts.of(form, snapshot.as_dict())
        # The order fields read off the JSON by their declared paths agree with the typed view.
        columns = snapshot.facts.columns
        total = form.summary.total_to_pay if form.summary else None
        assert columns["status"] == form.status
        assert columns["fulfillment_status"] == (form.fulfillment.status if form.fulfillment else None)
        assert columns["buyer_login"] == (form.buyer.login if form.buyer else None)
        assert columns["total_amount"] == (total.amount if total else None)
        assert columns["currency"] == (total.currency if total else None)
        assert snapshot.facts.line_item_ids == tuple(form.line_item_ids)
        assert snapshot.facts.bought_at == form.bought_at


def _tracked_objects_held_by(root: object) -> int:
    """Objects the cyclic collector tracks that `root` keeps alive (types and modules aside)."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        todo += [r for r in gc.get_referents(item) if gc.is_tracked(r) and not isinstance(r, type)]
    return len(seen)


def test_a_kept_form_holds_a_handful_of_tracked_objects_not_its_decoded_tree() -> None:
    # A page is held until Kafka acknowledges it; every object it keeps is walked by each collection.
    page = CheckoutFormPage.from_json(SAMPLES[0].read_bytes(), offset=0, limit=100)
    snapshot = page.forms[0]
    assert _tracked_objects_held_by(snapshot) <= 4
    assert _tracked_objects_held_by(snapshot.form) > 30  # what the snapshot no longer keeps


def test_form_with_explicit_null_in_every_optional_field_parses() -> None:
    raw = (
        b'{"id":"d4096850-303d-11f0-9468-6d34c41cf924","status":null,"fulfillment":null,"buyer":null,'
        b'"lineItems":null,"summary":null,"updatedAt":null,"revision":null,"marketplace":null,"note":null}'
    )
    snapshot = FormSnapshot.from_json(raw)
    assert snapshot.form.line_items == []
    assert snapshot.revision is None
    assert snapshot.form.bought_at is None
    assert snapshot.raw == raw


def test_nested_nulls_inside_typed_parts_parse() -> None:
    raw = (
        b'{"id":"a","buyer":{"id":null,"login":null,"email":null,"guest":null},'
        b'"fulfillment":{"status":null,"shipmentSummary":null,"provider":null},'
        b'"lineItems":[{"id":"li","boughtAt":null,"quantity":null,"price":null}],'
        b'"summary":{"totalToPay":null},"marketplace":{"id":null}}'
    )
    form = FormSnapshot.from_json(raw).form
    assert form.buyer is not None and form.buyer.login is None
    assert form.line_item_ids == ["li"]
