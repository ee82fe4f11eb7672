"""Response builders for both of Allegro's error shapes and the vendor JSON media type."""

from typing import Any

import orjson
from starlette.responses import Response

VENDOR_JSON = "application/vnd.allegro.public.v1+json"


class ApiError(Exception):
    """Raised anywhere in request handling; turned into the response it carries."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        media_type: str = VENDOR_JSON,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type

    def response(self) -> Response:
        """The HTTP response for this error."""
        return Response(orjson.dumps(self.body), self.status, self.headers, self.media_type)


def rest_error(
    status: int, code: str, message: str, *, path: str | None = None, headers: dict[str, str] | None = None
) -> ApiError:
    """An error in the REST `errors[]` shape."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "details": None,
        "path": path,
        "userMessage": message,
        "metadata": {},
    }
    return ApiError(status, {"errors": [error]}, headers)


def oauth_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> ApiError:
    """An error in the OAuth `{"error", "error_description"}` shape."""
    return ApiError(status, body, headers, media_type="application/json")


def vendor_json(content: bytes, status: int = 200) -> Response:
    """A REST answer with Allegro's media type, from already serialised bytes."""
    return Response(content, status, media_type=VENDOR_JSON)
