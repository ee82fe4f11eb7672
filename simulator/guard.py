"""The gate every REST (`/order/...`) request passes: latency, headers, token, scripted errors, rate limit,
faults."""

import asyncio
import time

from starlette.requests import Request

from simulator.faults import retry_after_header
from simulator.oauth import AccessToken
from simulator.responses import VENDOR_JSON, ApiError, oauth_error, rest_error
from simulator.scripted import raise_scripted
from simulator.state import SimulatorState

_NOT_ACCEPTABLE = "Not acceptable representation requested. Please check 'Accept' request header"
_SERVER_ERRORS = (
    (500, "INTERNAL_SERVER_ERROR", "Internal server error"),
    (502, "BAD_GATEWAY", "Bad gateway"),
    (503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
    (504, "UPSTREAM_SERVICE_TIMEOUT", "Upstream service timeout"),
)


def _check_headers(request: Request, state: SimulatorState) -> None:
    if VENDOR_JSON not in request.headers.get("accept", ""):
        raise rest_error(406, "NotAcceptableException", _NOT_ACCEPTABLE)
    if state.config.strict_user_agent and not request.headers.get("user-agent", "").strip():
        raise rest_error(
            403,
            "UserAgentRequired",
            "User-Agent header is required: AppName/1.2.3 (+https://info-url)",
            path=request.url.path,
        )


def _authenticate(request: Request, state: SimulatorState) -> AccessToken:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise oauth_error(
            401,
            {
                "error": "unauthorized",
                "error_description": "Full authentication is required to access this resource",
            },
            {"WWW-Authenticate": 'Bearer realm="oauth2-resource"'},
        )
    checked = state.oauth.check_access(token.strip())
    if isinstance(checked, str):
        header = f'Bearer realm="oauth2-resource", error="invalid_token", error_description="{checked}"'
        raise oauth_error(
            401, {"error": "invalid_token", "error_description": checked}, {"WWW-Authenticate": header}
        )
    if "allegro:api:orders:read" not in checked.scope:
        raise rest_error(
            403, "AUTHENTICATION_ERROR", "Access is denied: missing scope allegro:api:orders:read"
        )
    return checked


def _too_many(state: SimulatorState, wait_seconds: float) -> ApiError:
    state.stats.rate_limited += 1
    headers = {"Retry-After": retry_after_header(wait_seconds)} if state.faults.retry_after else None
    return rest_error(
        429, "TooManyRequests", "Too many requests, the client id is blocked for a while", headers=headers
    )


def _limit_rate(state: SimulatorState, client_id: str) -> None:
    faults = state.faults
    if faults.burst_429 > 0:
        state.faults = faults.model_copy(update={"burst_429": faults.burst_429 - 1})
        raise _too_many(state, 1)
    wait = state.limiter.admit(client_id, time.monotonic(), faults.rate_limit_per_min, faults.block_seconds)
    if wait is not None:
        raise _too_many(state, wait)


def _maybe_fail(state: SimulatorState, path: str) -> None:
    book = state.book
    if state.faults.error_rate_5xx and book.fault_rng.random() < state.faults.error_rate_5xx:
        status, code, message = book.fault_rng.choice(_SERVER_ERRORS)
        raise rest_error(status, code, message, path=path)


async def admit(request: Request, state: SimulatorState) -> AccessToken:
    """Let a REST request through, or raise the ApiError Allegro would answer with."""
    if state.faults.latency_ms:
        await asyncio.sleep(state.faults.latency_ms / 1000)
    _check_headers(request, state)
    token = _authenticate(request, state)
    bearer = request.headers.get("authorization", "").partition(" ")[2].strip()
    raise_scripted(state, request.url.path, [bearer])
    _limit_rate(state, token.client_id)
    _maybe_fail(state, request.url.path)
    return token
