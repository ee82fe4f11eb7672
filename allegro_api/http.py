"""The httpx client every Allegro call of a process goes through: one per process, keeping no cookies.

One client serves every seller of the process, so a cookie that one answer set would ride along on
the next seller's requests. Allegro's REST API authenticates each call by its bearer token alone
(`reference/allegro/README.md`) and needs no cookie; keeping none also spares every answer the cookie
jar's parsing, a good part of a quiet poll's CPU (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any

import httpx


class NoCookies(CookieJar):
    """A cookie jar that neither stores a cookie an answer sets nor sends one."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Ignore the answer's cookies."""

    def add_cookie_header(self, request: Any) -> None:
        """Send no cookie."""


def allegro_http_client(
    *,
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An httpx client for Allegro's API and its OAuth endpoints: `timeout_seconds` per request phase,
    `transport` (httpx's own when None), default `headers`, no cookies."""
    return httpx.AsyncClient(
        timeout=timeout_seconds, transport=transport, headers=headers, cookies=NoCookies()
    )
