"""Errors raised by the Allegro client; what an error means is its class.

Every error carries `status`, `code`, `message`, `trace_id` and `details` (the parsed body); callers
tell errors apart by class (`except NeedsReauth`, `isinstance(exc, Unavailable)`), and what the client
and the poller do about each class is decided in one place, `allegro_api.retrying.classify`:

```
AllegroError                 anything else: the run fails, the next cycle tries again
 ├── AuthError
 │    ├── AccessTokenExpired  401 on the REST API: refresh once, then retry
 │    ├── NeedsReauth         the refresh token is dead or missing: the seller must link again
 │    │    └── InvalidGrant   400 invalid_grant from /auth/oauth/token
 │    └── ClientAuthFailed    401 on /auth/oauth/*: our client id/secret are wrong (configuration)
 ├── Forbidden               403: access denied (scope, account); the account waits
 ├── NotFound                404: unknown, purged or merged checkout form
 ├── ValidationFailed        400 / 422: parameters Allegro rejects
 ├── NotAcceptable           406: missing or wrong Accept header
 ├── RateLimited             429: the client id is blocked; pause everything (`retry_after`)
 ├── Unavailable             5xx, 408, timeouts, connection errors: retried within the call
 ├── UnexpectedResponse      a 2xx body that is not the JSON we expect
 └── ClientSideLimitError    refused before any request (offset + limit > 10 000, limit out of range)
```

Device-flow outcomes (pending, slow down, denied, invalid code) are normal results, not errors: see
`allegro_api.auth`.

Secrets never ride on an error: `error_from_response` scrubs the texts it copies out of a body
(`core.redaction.scrub`: the call's known secrets, then secret shapes), because Allegro echoes tokens
in them ("Access token expired: <token>"). An HTML page (a proxy's 408 or 502) becomes a one-line
summary such as "HTTP 408 Request Timeout (HTML error page)", never the page itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import orjson

from core.redaction import scrub_optional


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The first error of either body shape, normalised."""

    code: str | None = None
    message: str | None = None
    user_message: str | None = None
    path: str | None = None
    details: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    html: bool = False  # the body was an HTML page (a proxy's or gateway's), not Allegro's JSON

    def scrubbed(self, known: tuple[str, ...]) -> ErrorBody:
        """This body with secrets removed from every text (metadata is dropped: it is free-form)."""
        return ErrorBody(
            code=scrub_optional(self.code, known),
            message=scrub_optional(self.message, known),
            user_message=scrub_optional(self.user_message, known),
            path=scrub_optional(self.path, known),
            details=scrub_optional(self.details, known),
            html=self.html,
        )


class AllegroError(Exception):
    """Base of every error the Allegro client raises."""

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


class NeedsReauth(AuthError):
    """The refresh token no longer works, or none is stored; the seller must link the account again."""


class InvalidGrant(NeedsReauth):
    """`invalid_grant` from the token endpoint: refresh token used up, expired or revoked."""


class ClientAuthFailed(AuthError):
    """Allegro rejected our client id / secret (or the app lacks the device grant)."""


class Forbidden(AllegroError):
    """403 (`AccessDenied`, missing scope, missing User-Agent): the account cannot be read for now.

    Allegro answers it for scope and account problems that last (allegro-api threads #12884, #11939),
    so the poller puts the account in `access_denied` and retries with a growing interval.
    """


class NotFound(AllegroError):
    """404: the resource does not exist (for checkout forms: purged or merged away)."""


class ValidationFailed(AllegroError):
    """400 / 422: Allegro rejected the parameters."""


class NotAcceptable(AllegroError):
    """406: the Accept header was missing or wrong."""


class RateLimited(AllegroError):
    """429: the whole client id is blocked; pause every request, honouring retry_after when sent."""

    # Allegro blocks the client id for a minute when it is over 9,000 requests/min.
    default_pause_seconds: ClassVar[float] = 60.0

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def pause_seconds(self) -> float:
        """How long to pause the client: Retry-After when sent, else Allegro's one-minute block."""
        return self.retry_after if self.retry_after is not None else self.default_pause_seconds


class Unavailable(AllegroError):
    """5xx, 408, timeout or connection failure: safe to retry an idempotent request with backoff.

    408 is a proxy giving up on a slow request (allegro-api #11724): the same request usually passes.
    """


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


def _is_html(content: bytes, content_type: str | None) -> bool:
    """An HTML page, by its declared type or by its first tag."""
    if content_type and "html" in content_type.lower():
        return True
    return content[:200].lstrip().lower().startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def parse_error_body(content: bytes, content_type: str | None = None) -> ErrorBody:
    """Read `{"errors":[...]}` or `{"error","error_description"}`; an HTML page gives `html=True` and
    no text; other text gives its first line (at most 200 characters); anything else an empty body.

    The texts are as sent: `error_from_response` scrubs them.
    """
    if _is_html(content, content_type):
        return ErrorBody(html=True)
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        lines = content[:200].decode("utf-8", "replace").strip().splitlines()
        return ErrorBody(message=lines[0].strip() if lines else None)
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
    408: Unavailable,
    422: ValidationFailed,
}


def read_error_body(response: httpx.Response, known: tuple[str, ...] = ()) -> ErrorBody:
    """The response's error body with the call's known secrets and secret shapes scrubbed."""
    return parse_error_body(response.content, response.headers.get("content-type")).scrubbed(known)


def error_summary(response: httpx.Response, body: ErrorBody) -> str:
    """A short readable message: the body's own, else e.g. "HTTP 408 Request Timeout (HTML error page)"."""
    if body.message or body.code:
        return body.message or body.code or ""
    phrase = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return f"{phrase} (HTML error page)" if body.html else phrase


def error_from_response(response: httpx.Response, *, secrets: tuple[str, ...] = ()) -> AllegroError:
    """Build the matching error for a non-2xx REST API response; `secrets` are the values the call sent
    (its access token, ...), scrubbed from every text copied out of the body."""
    body = read_error_body(response, secrets)
    status = response.status_code
    message = error_summary(response, body)
    common: dict[str, Any] = {
        "status": status,
        "code": body.code,
        "trace_id": scrub_optional(response.headers.get("trace-id"), secrets),
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
