"""The process's one httpx client for Allegro: it keeps no cookie between sellers, and parses each
distinct request URL once."""

from __future__ import annotations

import httpx

from allegro_api.client import AllegroClient, request_url
from allegro_api.http import allegro_http_client

API = "https://api.allegro.test"


async def test_a_cookie_one_answer_sets_never_rides_on_the_next_sellers_request() -> None:
    cookies_sent: list[str | None] = []

    def allegro(request: httpx.Request) -> httpx.Response:
        cookies_sent.append(request.headers.get("cookie"))
        return httpx.Response(200, json={"events": []}, headers={"Set-Cookie": "session=seller-a; Path=/"})

    async with allegro_http_client(timeout_seconds=5, transport=httpx.MockTransport(allegro)) as http:
        client = AllegroClient(http, api_url=API, user_agent="Test/1.0", max_retries=0)
        await client.events(access_token="token-of-seller-a")
        await client.events(access_token="token-of-seller-b")
        assert not http.cookies
    assert cookies_sent == [None, None]


async def test_request_urls_are_parsed_once_and_encoded_as_httpx_encodes_params() -> None:
    params = (("limit", "100"), ("from", "a+b=/ ź&x"))
    url = request_url(API, "/order/events", params)
    assert url is request_url(API, "/order/events", params)
    assert url == httpx.URL(f"{API}/order/events", params=params)
    assert url.params["from"] == "a+b=/ ź&x"
    assert request_url(API, "/order/events", (("limit", "100"), ("from", "other"))) != url

    seen: list[httpx.URL] = []

    def allegro(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"events": []})

    async with allegro_http_client(timeout_seconds=5, transport=httpx.MockTransport(allegro)) as http:
        client = AllegroClient(http, api_url=API, user_agent="Test/1.0", max_retries=0)
        await client.events(access_token="t", from_id="a+b=/ ź&x", limit=100)
    assert seen == [url]
