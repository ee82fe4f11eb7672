"""Any form Allegro sends comes back exactly: Allegro's body -> poller's envelope -> Kafka -> the worker
(a real process) -> PostgreSQL -> the REST API, its exports, `allegro.orders` and `allegro.order-revisions`.

Forms hold what jsonb refuses (U+0000, lone surrogates) and what a re-encoding would change (other escapes,
astral characters written either way, very long strings); each must be given back as the text Allegro sent.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from allegro_api import CheckoutFormPage, FormSnapshot
from core.contract import order_key, split_document
from core.settings import KafkaSettings
from db.engine import asyncpg_dsn
from producers.snapshots import TokenIdentity, form_envelope
from tests.processors.worker import Worker, consume_all, count_orders, produce, wait_until, worker_env

FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"
F03B = (FIELD_CASES / "F03b.json").read_bytes().strip()
STREET = b'"street":"\\u0000Le\xc5\x9bna 14"'  # F03b's delivery street, U+0000 first


def variant(form_id: str, street: bytes) -> bytes:
    """F03b with another id and another delivery street (a JSON string's text, quotes included)."""
    text = F03B.replace(b"c25ca34c-ec75-11f1-b9cb-02fc00000001", form_id.encode())
    assert STREET in text
    return text.replace(STREET, b'"street":' + street)


def forms() -> dict[str, bytes]:
    """Allegro bodies by form id: the field case itself, then the same kind of fault widened."""
    ids = iter(f"e{n:07d}-0000-11f1-0000-02fc00000001" for n in range(100))
    streets = [
        rb'"\u0001\u0002\u0007\b\f\n\r\t\u000b\u001b\u001f\u007f end"',  # every control-character escape
        rb'"\u0000\u0000"',  # nothing but U+0000
        rb'"lone high \ud800 then text"',
        rb'"lone low \udfff"',
        rb'"reversed \udc00\ud800"',
        rb'"high at the very end \udbff"',
        '"astral raw \U0001f600 and escaped \\ud83d\\ude00"'.encode(),
        rb'"escaped solidus \/ upper hex \u00E9 \u0142 quote \" backslash-u0000 \\u0000"',
        b'"' + "\u0105\U0001f4e6".encode() * 40_000 + b'"',  # 240 kB of 2- and 4-byte characters
    ]
    bodies = {"c25ca34c-ec75-11f1-b9cb-02fc00000001": F03B}
    for street in streets:
        form_id = next(ids)
        bodies[form_id] = variant(form_id, street)
    # Whitespace inside a body is part of the text too.
    form_id = next(ids)
    bodies[form_id] = b"{ \n" + variant(form_id, rb'"x\u0000"')[1:-1] + b"\n }"
    # A number beyond PostgreSQL's numeric: jsonb refuses the whole text (no query copy then).
    form_id = next(ids)
    packages = b'"calculatedNumberOfPackages":1'
    bodies[form_id] = variant(form_id, b'"Le\xc5\x9bna 14"').replace(packages, packages + b"e1000000")
    return bodies


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


async def test_any_valid_form_is_stored_and_given_back_as_allegro_sent_it(
    kafka_settings: KafkaSettings,
    database_url: str,
    client: httpx.AsyncClient,
    user_id: str,
    tmp_path: Path,
    workers: list[Worker],
) -> None:
    bodies = forms()
    token_id = uuid.uuid4()
    identity = TokenIdentity(token_id=token_id, user_id=user_id, seller_id="90011223")
    envelopes = [
        form_envelope(
            identity,
            FormSnapshot.from_json(body),  # the poller's own decoding of a detail GET's body
            source="journal",
            sync_run_id=uuid.uuid4(),
            fetched_at=datetime.now(UTC),
        ).encode()
        for body in bodies.values()
    ]
    await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, envelopes)
    worker = Worker(
        worker_env(kafka_settings, database_url, f"a{uuid.uuid4().hex}", tmp_path / "faust"),
        tmp_path / "worker.log",
    )
    workers.append(worker)
    worker.start()

    async def all_stored() -> bool:
        return await count_orders(database_url, token_id) == len(bodies)

    await wait_until(all_stored, within=90, what="every form stored", workers=workers)
    dead = await consume_all(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 2)
    assert dead == []
    # The jsonb query copy: U+FFFD where jsonb refuses an escape, none where it refuses the text.
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        copies = dict(
            await conn.fetch(
                "SELECT checkout_form_id, order_data #>> '{delivery,address,street}' FROM orders"
                " WHERE token_id = $1",
                token_id,
            )
        )
    finally:
        await conn.close()
    assert copies["c25ca34c-ec75-11f1-b9cb-02fc00000001"] == "\ufffdLe\u015bna 14"
    assert [form_id for form_id, street in copies.items() if street is None] == [list(bodies)[-1]]

    for form_id, body in bodies.items():
        sent = body.decode()
        one = await client.get(f"/v1/users/{user_id}/orders/{form_id}")
        assert one.status_code == 200, one.text
        assert split_document(one.content)[1] == sent
        history = await client.get(f"/v1/users/{user_id}/orders/{form_id}/revisions")
        [revision] = json.loads(history.text)["items"]  # the standard library keeps lone surrogates
        assert revision["order"] == json.loads(sent)
        assert sent in history.text  # and the text itself, character for character

    ndjson = await client.get(f"/v1/users/{user_id}/orders/export", params={"format": "ndjson"})
    # One order per line: line breaks between a form's tokens (never inside its strings) become spaces.
    exported = sorted(split_document(line)[1] for line in ndjson.content.splitlines())
    assert exported == sorted(body.decode().replace("\n", " ") for body in bodies.values())
    table = await client.get(f"/v1/users/{user_id}/orders/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(table.text, newline="")))
    assert sorted(row["order"] for row in rows) == sorted(body.decode() for body in bodies.values())

    async def of_token(topic: str) -> list[Any]:
        # A starting worker also publishes what other tests' batches left in the shared outbox.
        records = await consume_all(kafka_settings.bootstrap_servers, topic, 2)
        return [r for r in records if r.key.startswith(str(token_id).encode())]

    async def published() -> bool:
        return len(await of_token(kafka_settings.revisions_topic)) == len(bodies)

    await wait_until(published, within=30, what="every revision published", workers=workers)
    sent_by_key = {order_key(token_id, form_id).encode(): body.decode() for form_id, body in bodies.items()}
    changes = await of_token(kafka_settings.orders_topic)
    assert {r.key: split_document(r.value)[1] for r in changes} == sent_by_key
    revisions = await of_token(kafka_settings.revisions_topic)
    # keyed {token}:{form}:{revision}:{content hash}
    assert {r.key.rsplit(b":", 2)[0]: split_document(r.value)[1] for r in revisions} == sent_by_key


def test_a_list_page_gives_each_form_its_exact_bytes() -> None:
    bodies = list(forms().values())
    # Allegro's compact page, and the same forms in a spaced-out page (cut by the scanner, not orjson).
    compact = (
        b'{"checkoutForms":['
        + b",".join(bodies)
        + b'],"count":%d,"totalCount":%d}'
        % (
            len(bodies),
            len(bodies),
        )
    )
    spaced = b'{ "count" : 2 ,\n "checkoutForms" : [\n ' + b" ,\n ".join(bodies) + b" ] }"
    for page in (compact, spaced):
        parsed = CheckoutFormPage.from_json(page, offset=0, limit=100)
        assert [form.raw for form in parsed.forms] == bodies
        assert parsed.forms[0].facts.revision == "a1b2c3d4"


def test_indexed_texts_hold_a_replacement_character_where_the_form_holds_nul_or_a_lone_surrogate() -> None:
    body = F03B.replace(b'"login":"zielony_kot_42"', rb'"login":"kot\u0000\ud800\ud83d\ude00"')
    snapshot = FormSnapshot.from_json(body)
    assert snapshot.raw == body
    assert snapshot.facts.columns["buyer_login"] == "kot\ufffd\ufffd\U0001f600"
