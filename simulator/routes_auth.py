"""OAuth routes on the `allegro.pl` host: device authorisation and the token endpoint."""

import base64
import binascii
import hmac
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from simulator.deps import StateDep
from simulator.responses import oauth_error
from simulator.scripted import raise_scripted
from simulator.state import SimulatorState

router = APIRouter()
_DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _check_client(request: Request, state: SimulatorState) -> None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        client_id = secret = ""
    config = state.config
    valid = (
        scheme.lower() == "basic"
        and hmac.compare_digest(client_id.encode(), config.client_id.encode())
        and hmac.compare_digest(secret.encode(), config.client_secret.encode())
    )
    if not valid:
        raise oauth_error(401, {"error": "Unauthorized", "error_description": "Unauthorized"})


async def _form_body(request: Request) -> dict[str, str]:
    # Since 2025-09 Allegro reads these parameters from the body only; the query string is ignored.
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _json(status: int, body: dict[str, object]) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


@router.post("/auth/oauth/device")
async def start_device_flow(request: Request, state: StateDep) -> Response:
    """Start a device authorisation for the registered client."""
    _check_client(request, state)
    body = await _form_body(request)
    raise_scripted(state, request.url.path, [state.config.client_secret])
    if body.get("client_id", state.config.client_id) != state.config.client_id:
        raise oauth_error(400, {"error": "invalid_request", "error_description": "client_id does not match"})
    return _json(200, state.oauth.start_device(body.get("scope")))


@router.post("/auth/oauth/token")
async def issue_token(request: Request, state: StateDep) -> Response:
    """The token endpoint: device-code and refresh-token grants."""
    _check_client(request, state)
    body = await _form_body(request)
    grant_type = body.get("grant_type")
    grant = "device_code" if grant_type == _DEVICE_GRANT else grant_type
    credential = body.get("device_code" if grant == "device_code" else "refresh_token", "")
    raise_scripted(state, request.url.path, [credential, state.config.client_secret], grant)
    if not grant_type:
        return _json(
            400, {"error": "invalid_request", "error_description": "OAuth 2.0 Parameter: grant_type"}
        )
    if grant_type == _DEVICE_GRANT:
        status, answer = state.oauth.poll_device(body.get("device_code", ""))
    elif grant_type == "refresh_token":
        status, answer = state.oauth.use_refresh_token(body.get("refresh_token", ""))
    else:
        status, answer = (
            400,
            {"error": "unsupported_grant_type", "error_description": f"Unsupported grant type: {grant_type}"},
        )
    return _json(status, answer)
