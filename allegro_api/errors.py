"""Errors raised by the Allegro client; behaviour travels as attributes, not as class checks.

```
AllegroError                 retriable, status, code, message, trace_id, details
 ├── AuthError
 │    ├── AccessTokenExpired  401 on the REST API: refresh once, then retry (needs_refresh)
 │    ├── NeedsReauth         the refresh token is dead: the seller must link again (needs_reauth)
 │    │    └── InvalidGrant   400 invalid_grant from /auth/oauth/token
 │    └── ClientAuthFailed    401 on /auth/oauth/*: our client id/secret are wrong (configuration)
 ├── Forbidden               403: missing scope or someone else's resource
 ├── NotFound                404: unknown, purged or merged checkout form
 ├── ValidationFailed        400 / 422: parameters Allegro rejects
 ├── NotAcceptable           406: missing or wrong Accept header
 ├── RateLimited             429: the client id is blocked; pause everything (retry_after, pause_client)
 ├── Unavailable             5xx, timeouts, connection errors (retriable)
 ├── UnexpectedResponse      a 2xx body that is not the JSON we expect
 └── ClientSideLimitError    refused before any request (offset + limit > 10 000, limit out of range)
```

Device-flow outcomes (pending, slow down, denied, invalid code) are normal results, not errors: see
`allegro_api.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import orjson


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The first error of either body shape, normalised."""

    code: str | None = None
    message: str | None = None
    user_message: str | None = None
    path: str | None = None
    details: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class AllegroError(Exception):
    """Base of every error the Allegro client raises."""

    retriable: ClassVar[bool] = False
    needs_refresh: ClassVar[bool] = False
    needs_reauth: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        trace_id: str | None = None,
        details: ErrorBody | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.trace_id = trace_id
        self.details = details

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        return " ".join(parts)


class AuthError(AllegroError):
    """A token or client-credential problem."""


class AccessTokenExpired(AuthError):
    """The access token is expired or revoked; refresh once (serialised per token), then retry."""

    needs_refresh = True


class NeedsReauth(AuthError):
    """The refresh token no longer works; the seller must link the account again."""

    needs_reauth = True


class InvalidGrant(NeedsReauth):
    """`invalid_grant` from the token endpoint: refresh token used up, expired or revoked."""


class ClientAuthFailed(AuthError):
    """Allegro rejected our client id / secret (or the app lacks the device grant)."""


class Forbidden(AllegroError):
    """403: missing scope or another seller's resource."""


class NotFound(AllegroError):
    """404: the resource does not exist (for checkout forms: purged or merged away)."""


class ValidationFailed(AllegroError):
    """400 / 422: Allegro rejected the parameters."""


class NotAcceptable(AllegroError):
    """406: the Accept header was missing or wrong."""


class RateLimited(AllegroError):
    """429: the whole client id is blocked; pause every request, honouring retry_after when sent."""

    # Allegro blocks the client id for a minute when it is over 9,000 requests/min.
    pause_client: ClassVar[bool] = True
    default_pause_seconds: ClassVar[float] = 60.0

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def pause_seconds(self) -> float:
        """How long to pause the client: Retry-After when sent, else Allegro's one-minute block."""
        return self.retry_after if self.retry_after is not None else self.default_pause_seconds


class Unavailable(AllegroError):
    """5xx, timeout or connection failure: safe to retry an idempotent request with backoff."""

    retriable = True


class UnexpectedResponse(AllegroError):
    """A success status whose body is not the JSON shape we expect."""


class ClientSideLimitError(AllegroError):
    """A request Allegro would reject with 422, refused before it is sent."""

    def __init__(self, message: str, *, offset: int, limit: int, total_count: int | None = None) -> None:
        super().__init__(message, code="CLIENT_SIDE_LIMIT")
        self.offset = offset
        self.limit = limit
        self.total_count = total_count


def _as_text(value: object) -> str | None:
    """Keep strings, stringify other non-null scalars, drop nulls."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def parse_error_body(content: bytes) -> ErrorBody:
    """Read `{"errors":[...]}` or `{"error","error_description"}`; anything else gives an empty body."""
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        text = content[:200].decode("utf-8", "replace").strip()
        return ErrorBody(message=text or None)
    if not isinstance(data, dict):
        return ErrorBody()
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        metadata = first.get("metadata")
        return ErrorBody(
            code=_as_text(first.get("code")),
            message=_as_text(first.get("message")),
            user_message=_as_text(first.get("userMessage")),
            path=_as_text(first.get("path")),
            details=_as_text(first.get("details")),
            metadata=metadata if isinstance(metadata, dict) else {},
        )
    if "error" in data:
        return ErrorBody(code=_as_text(data.get("error")), message=_as_text(data.get("error_description")))
    return ErrorBody()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when absent or bad."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_BY_STATUS: dict[int, type[AllegroError]] = {
    400: ValidationFailed,
    401: AccessTokenExpired,
    403: Forbidden,
    404: NotFound,
    406: NotAcceptable,
    422: ValidationFailed,
}


def error_from_response(response: httpx.Response) -> AllegroError:
    """Build the matching error for a non-2xx REST API response."""
    body = parse_error_body(response.content)
    status = response.status_code
    message = body.message or body.code or f"HTTP {status}"
    common: dict[str, Any] = {
        "status": status,
        "code": body.code,
        "trace_id": response.headers.get("trace-id"),
        "details": body,
    }
    if status == 429:
        return RateLimited(
            message, retry_after=parse_retry_after(response.headers.get("retry-after")), **common
        )
    if status >= 500:
        return Unavailable(message, **common)
    error_class = _BY_STATUS.get(status, AllegroError)
    return error_class(message, **common)
