"""A small synchronous client of our own REST API, for the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx


class ServiceApiError(RuntimeError):
    """The API answered with an error; the message is its problem detail."""


class ServiceApi:
    """Calls `/v1/...` with the service API key."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON body (None for 204)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceApiError(f"the API at {self._http.base_url} did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise ServiceApiError(_problem(response))
        return None if response.status_code == 204 or not response.content else response.json()

    def stream_lines(self, path: str, params: dict[str, str]) -> Iterator[bytes]:
        """Stream a line-oriented response (exports) without holding it in memory."""
        with self._http.stream("GET", path, params=params, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                raise ServiceApiError(_problem(response))
            yield from response.iter_bytes()


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or body
        return f"HTTP {response.status_code}: {detail}"
    return f"HTTP {response.status_code}: {body}"
