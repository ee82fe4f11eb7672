"""The verification page at `verification_uri`: what it shows, what it refuses, and that its answers are
the control API's (reference/allegro/README.md §1.1, §1.2)."""

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.simulator.conftest import Sim, SimFactory

pytestmark = pytest.mark.asyncio


def _path(device: dict[str, Any], key: str = "verification_uri_complete") -> str:
    parts = urlsplit(str(device[key]))
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _answer(sim: Sim, user_code: str, decision: str, seller_id: str = "") -> httpx.Response:
    body = {"user_code": user_code, "seller_id": seller_id, "decision": decision}
    return await sim.client.post("/skojarz-aplikacje", data=body)


async def test_verification_uri_serves_the_form_prefilled_with_the_code(sim: Sim) -> None:
    seller_id = await sim.seller()
    device = await sim.start_device()
    response = await sim.client.get(_path(device))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f'name="user_code" value="{device["user_code"]}"' in response.text
    assert f'<option value="{seller_id}" selected>' in response.text
    assert "allegro:api:orders:read" in response.text
    bare = await sim.client.get(_path(device, "verification_uri"))
    assert bare.status_code == 200
    assert 'name="user_code" value=""' in bare.text


async def test_page_escapes_seller_logins_and_typed_codes(sim: Sim) -> None:
    await sim.control("POST", "/sellers", {"login": '<script>alert("x")</script>'})
    device = await sim.start_device()
    page = await sim.client.get(_path(device))
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    hostile = await sim.client.get("/skojarz-aplikacje", params={"code": '"><img src=x onerror=1>'})
    assert "<img" not in hostile.text
    assert 'value="imgsrcxonerror1"' in hostile.text


async def test_page_loads_nothing_from_elsewhere_and_runs_no_script(sim: Sim) -> None:
    page = await sim.client.get("/skojarz-aplikacje")
    assert not re.search(r"""(src|href)\s*=""", page.text)
    assert "<script" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_approving_on_the_page_gives_the_chosen_seller_tokens(sim: Sim) -> None:
    await sim.seller()
    chosen = await sim.seller()
    device = await sim.start_device()
    spaced = device["user_code"].upper()
    spaced = f"{spaced[:3]} {spaced[3:6]}-{spaced[6:]}"
    response = await _answer(sim, spaced, "approve", chosen)
    assert response.status_code == 200
    assert "linked to seller" in response.text and chosen in response.text
    assert 'name="user_code"' not in response.text
    poll = await sim.poll(device["device_code"])
    assert poll.status_code == 200
    payload = jwt.decode(poll.json()["access_token"], options={"verify_signature": False})
    assert payload is not None and payload["user_name"] == chosen


async def test_an_answer_on_the_page_is_the_control_api_s_answer(sim: Sim) -> None:
    seller_id = await sim.seller()
    device = await sim.start_device()
    assert (await _answer(sim, device["user_code"], "deny")).status_code == 200
    again = await sim.client.post(
        "/_sim/device/approve", json={"user_code": device["user_code"], "seller_id": seller_id}
    )
    assert again.status_code == 404
    poll = await sim.poll(device["device_code"])
    assert (poll.status_code, poll.json()) == (400, {"error": "access_denied"})
    other = await sim.start_device()
    await sim.control("POST", "/device/approve", {"user_code": other["user_code"], "seller_id": seller_id})
    late = await _answer(sim, other["user_code"], "deny")
    assert late.status_code == 409
    assert "already approved for seller" in late.text
    assert (await sim.poll(other["device_code"])).status_code == 200


async def test_unknown_code_is_refused_with_a_message(sim: Sim) -> None:
    seller_id = await sim.seller()
    page = await sim.client.get("/skojarz-aplikacje", params={"code": "zzzzzzzzz"})
    assert page.status_code == 200
    assert "No application asked for the code “zzzzzzzzz”" in page.text
    answer = await _answer(sim, "zzzzzzzzz", "approve", seller_id)
    assert answer.status_code == 404
    assert "No application asked for the code" in answer.text


async def test_expired_code_is_refused_with_a_message(make_sim: SimFactory) -> None:
    sim = await make_sim(device_code_expires_in=1)
    seller_id = await sim.seller()
    device = await sim.start_device()
    await asyncio.sleep(1.05)
    page = await sim.client.get(_path(device))
    assert "has expired" in page.text
    answer = await _answer(sim, device["user_code"], "approve", seller_id)
    assert answer.status_code == 410
    assert "has expired" in answer.text


async def test_used_and_denied_codes_say_they_were_answered(sim: Sim) -> None:
    seller_id = await sim.seller()
    linked = await sim.start_device()
    await _answer(sim, linked["user_code"], "approve", seller_id)
    assert (await sim.poll(linked["device_code"])).status_code == 200
    used = await sim.client.get(_path(linked))
    assert "already approved for seller" in used.text
    denied = await sim.start_device()
    await _answer(sim, denied["user_code"], "deny")
    page = await sim.client.get(_path(denied))
    assert "already denied" in page.text
    assert (await _answer(sim, denied["user_code"], "approve", seller_id)).status_code == 409


async def test_unknown_seller_or_missing_choice_changes_nothing(sim: Sim) -> None:
    await sim.seller()
    device = await sim.start_device()
    unknown = await _answer(sim, device["user_code"], "approve", "999999999")
    assert unknown.status_code == 422
    assert "Choose one of the seller accounts" in unknown.text
    undecided = await _answer(sim, device["user_code"], "")
    assert undecided.status_code == 400
    empty = await _answer(sim, "", "approve")
    assert empty.status_code == 400
    poll = await sim.poll(device["device_code"])
    assert poll.json()["error"] == "authorization_pending"


async def test_without_sellers_the_page_says_how_to_make_one(sim: Sim) -> None:
    device = await sim.start_device()
    page = await sim.client.get(_path(device))
    assert "POST /_sim/sellers" in page.text
    assert 'id="approve" name="decision" value="approve" disabled' in page.text
