"""OAuth against Allegro's `/auth/oauth/*`: the device flow and refresh, over an injected httpx client.

Every call uses HTTP Basic client authentication and a form body: since 2025-09 the token endpoint
accepts parameters in the body only, never in the query string. `/auth/oauth/*` does not require a
User-Agent. Polling outcomes of the device flow are values (`Pending`, `SlowDown`, ...), not exceptions:
they are the normal course of a link.

Error texts lose the call's secrets (the client secret, the device code, the refresh token) and any
secret-shaped string before they reach an exception or an outcome: Allegro's token endpoint echoes
them ("Invalid refresh token: <token>").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from allegro_api.errors import (
    AllegroError,
    ClientAuthFailed,
    InvalidGrant,
    Unavailable,
    UnexpectedResponse,
    error_from_response,
    error_summary,
    read_error_body,
)
from allegro_api.model_base import load_json_object
from allegro_api.tokens import DeviceAuthorization, TokenPair

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 §3.5: on slow_down the poller adds 5 seconds to its interval.
SLOW_DOWN_INCREMENT_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Pending:
    """The user has not decided yet: poll again after the interval."""


@dataclass(frozen=True, slots=True)
class SlowDown:
    """We polled too fast: lengthen the interval by `increment_seconds` and go on."""

    increment_seconds: int = SLOW_DOWN_INCREMENT_SECONDS


@dataclass(frozen=True, slots=True)
class Denied:
    """The user refused access: stop."""


@dataclass(frozen=True, slots=True)
class InvalidCode:
    """The device code is wrong, already used or expired: stop and start a new link."""

    error: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Granted:
    """The user approved: here are the tokens (a device code yields them only once)."""

    tokens: TokenPair


DevicePollOutcome = Pending | SlowDown | Denied | InvalidCode | Granted


class AllegroAuth:
    """Device flow and token refresh for one OAuth client (client id / secret)."""

    def __init__(self, http: httpx.AsyncClient, *, auth_url: str, client_id: str, client_secret: str) -> None:
        self._http = http
        self._auth_url = auth_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._basic = httpx.BasicAuth(client_id, client_secret)

    async def start_device_flow(self, scope: str | Iterable[str] | None = None) -> DeviceAuthorization:
        """Ask for a device code and user code; without a scope the app gets every scope it declared."""
        form = {"client_id": self._client_id}
        if scope is not None:
            form["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        response = await self._post("/auth/oauth/device", form)
        if response.status_code != 200:
            raise self._error(response, ())
        try:
            return DeviceAuthorization.model_validate(load_json_object(response.content))
        except ValidationError as exc:
            raise UnexpectedResponse("malformed device authorization response") from exc

    async def poll_device_token(self, device_code: str) -> DevicePollOutcome:
        """Poll once for the tokens of a device code; the caller waits `interval` between polls."""
        response = await self._post(
            "/auth/oauth/token", {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}
        )
        if response.status_code == 200:
            return Granted(self._token_pair(response))
        if response.status_code != 400:
            raise self._error(response, (device_code,))
        body = read_error_body(response, (device_code, self._client_secret))
        if body.code == "authorization_pending":
            return Pending()
        if body.code == "slow_down":
            return SlowDown()
        if body.code == "access_denied":
            return Denied()
        # "invalid_request: Invalid device code" (wrong, used, expired) and any other 400: Allegro's
        # documentation says the code expired or the request is wrong; either way the link is over.
        return InvalidCode(error=body.code, description=body.message)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; raises InvalidGrant when the refresh token is dead.

        Never retried here: a refresh token is single-use (it lives on for only 60 s after its first
        use), and a refresh that reached Allegro but whose answer was lost may already have rotated it.
        The caller, who serialises refreshes per token and stores the new pair before using it, decides
        whether to retry, and only inside that 60 s grace.
        """
        response = await self._post(
            "/auth/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if response.status_code == 200:
            return self._token_pair(response)
        body = read_error_body(response, (refresh_token, self._client_secret))
        if response.status_code == 400 and body.code == "invalid_grant":
            # The description echoes the refresh token itself; keep it out of the message.
            raise InvalidGrant("refresh token rejected", status=400, code=body.code)
        raise self._error(response, (refresh_token,))

    async def _post(self, path: str, form: dict[str, str]) -> httpx.Response:
        """POST a form with Basic client authentication, mapping transport failures to Unavailable."""
        try:
            return await self._http.post(f"{self._auth_url}{path}", data=form, auth=self._basic)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"timeout calling {path}") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"connection error calling {path}: {type(exc).__name__}") from exc

    @staticmethod
    def _token_pair(response: httpx.Response) -> TokenPair:
        """Validate a token response."""
        try:
            return TokenPair.model_validate(load_json_object(response.content))
        except ValidationError as exc:
            raise UnexpectedResponse("malformed token response") from exc

    def _error(self, response: httpx.Response, secrets: tuple[str, ...]) -> AllegroError:
        """Map an auth-endpoint failure; a 401 here means our client credentials, not a user token.

        `secrets` are what the call sent besides the client secret (device code, refresh token)."""
        known = (*secrets, self._client_secret)
        if response.status_code == 401:
            body = read_error_body(response, known)
            return ClientAuthFailed(
                error_summary(response, body)
                if (body.message or body.html)
                else "client authentication failed",
                status=401,
                code=body.code,
                trace_id=response.headers.get("trace-id"),
                details=body,
            )
        return error_from_response(response, secrets=known)
