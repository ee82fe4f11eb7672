"""Our Allegro client keeps each form's bytes exactly as Allegro's HTTP body holds them, and decodes
bodies orjson refuses (escaped lone surrogates). Allegro is the one part faked here (httpx.MockTransport
serving the bytes byte for byte), since no simulator writes such bodies."""

from __future__ import annotations

from pathlib import Path

import httpx

from allegro_api import AllegroClient

FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"
F03B = (FIELD_CASES / "F03b.json").read_bytes().strip()
LONE = F03B.replace(b'"login":"zielony_kot_42"', rb'"login":"kot\ud800"').replace(
    b"c25ca34c-ec75-11f1-b9cb-02fc00000001", b"c25ca34c-ec75-11f1-b9cb-02fc00000002"
)
ESCAPED = F03B.replace(b"Przyk\xc5\x82adowa", rb"Przyk\u0142adowa \/ \uD83D\uDE00").replace(
    b"c25ca34c-ec75-11f1-b9cb-02fc00000001", b"c25ca34c-ec75-11f1-b9cb-02fc00000003"
)
PAGE = b'{"checkoutForms":[' + b",".join([F03B, LONE, ESCAPED]) + b'],"count":3,"totalCount":3}'
EVENTS = (
    rb'{"events":[{"id":"1747170352812001","type":"BOUGHT","occurredAt":"2025-05-13T21:05:52.809Z",'
    rb'"order":{"seller":{"id":"44123456"},"buyer":{"id":"1","login":"kot\ud800","guest":false},'
    rb'"lineItems":[],"checkoutForm":{"id":"c25ca34c-ec75-11f1-b9cb-02fc00000002","revision":"a1b2c3d4"}}}]}'
)


def allegro(request: httpx.Request) -> httpx.Response:
    """Allegro's answers, as bytes."""
    headers = {"content-type": "application/vnd.allegro.public.v1+json"}
    path = request.url.path
    if path == "/order/checkout-forms":
        return httpx.Response(200, content=PAGE, headers=headers)
    if path == "/order/events":
        return httpx.Response(200, content=EVENTS, headers=headers)
    form_id = path.rsplit("/", 1)[1].encode()
    body = next(body for body in (F03B, LONE, ESCAPED) if form_id in body)
    return httpx.Response(200, content=body + b"\n", headers=headers)


async def test_list_pages_and_details_keep_allegros_bytes_and_lone_surrogates_decode() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(allegro)) as http:
        client = AllegroClient(http, api_url="https://api.allegro.test", user_agent="Test/1.0", max_retries=0)
        page = await client.checkout_forms(access_token="t")
        assert [form.raw for form in page.forms] == [F03B, LONE, ESCAPED]
        assert page.forms[1].facts.columns["buyer_login"] == "kot\ufffd"
        for form in page.forms:
            detail = await client.checkout_form(form.id, access_token="t")
            assert detail.raw == form.raw  # the body, without the trailing newline around it
        events = await client.events(access_token="t")
        assert [event.checkout_form_id for event in events] == ["c25ca34c-ec75-11f1-b9cb-02fc00000002"]
