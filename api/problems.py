"""Problem Details (RFC 9457) for every error the API returns, and the handlers that produce them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:allegro-orders-backup:problem:"

logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One invalid input."""

    loc: list[str | int] = Field(description="Where the input is: `path`, `query`, `body`, then the field.")
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as `application/problem+json`."""

    type: str = Field(examples=[PROBLEM_TYPE_PREFIX + "not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(ge=400, le=599, examples=[404])
    detail: str = Field(examples=["no token 0b6f… for this user"])
    errors: list[FieldError] | None = Field(default=None, description="The invalid inputs, for 400/422.")


class ProblemError(Exception):
    """Raised inside api/ to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _slug(status)
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})


def _slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body = problem_body(status, detail, slug=slug, errors=errors)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(
    status: int, detail: str, *, slug: str | None = None, errors: Sequence[FieldError] | None = None
) -> bytes:
    """The JSON bytes of a problem document (`Problem`); `slug` defaults to the status phrase's."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + (slug or _slug(status)),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [error.model_dump() for error in errors]
    return orjson.dumps(body)


def _field_errors(raw: Sequence[Any]) -> list[FieldError]:
    """Keep location, message and type; never echo the input (it may be anything)."""
    return [
        FieldError(
            loc=[part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            msg=str(error.get("msg", "invalid")),
            type=str(error.get("type", "value_error")),
        )
        for error in raw
    ]


async def _on_problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)  # noqa: S101 - registered for ProblemError only
    return problem_response(exc.status, exc.detail, slug=exc.slug, errors=exc.errors, headers=exc.headers)


async def _on_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = _field_errors(exc.errors())
    fields = ", ".join(".".join(str(p) for p in e.loc) for e in errors)
    return problem_response(422, f"invalid input: {fields}", slug="validation-failed", errors=errors)


async def _on_http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """500 for anything unforeseen, logged with its traceback; the answer reveals nothing."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal error; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error with problem+json, including framework 404/405 and validation errors."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the Problem schema."""
    descriptions = {
        400: "Bad request (for example a tampered or foreign cursor).",
        401: "Missing or wrong API key.",
        404: "No such resource for this user.",
        409: "The token is not in a state that allows this.",
        422: "Invalid input; `errors` lists every invalid field.",
        502: "Allegro answered with an error.",
        503: "Allegro or the database is unavailable; retry after `Retry-After` seconds.",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, HTTPStatus(status).phrase),
            "content": {
                PROBLEM_JSON: {
                    "example": {
                        "type": PROBLEM_TYPE_PREFIX + _slug(status),
                        "title": HTTPStatus(status).phrase,
                        "status": status,
                        "detail": descriptions.get(status, HTTPStatus(status).phrase),
                    }
                }
            },
        }
        for status in statuses
    }
