"""Scripted errors (`PUT /_sim/faults {"errors": [...]}`): answers given instead of the real ones.

They reproduce what integrators meet in the field: a proxy's HTML 408 or 502, a lasting 403
`AccessDenied`, a 401 whose `error_description` repeats the access token (allegro-api #13741), a token
endpoint that echoes the refresh token or device code it was sent.
"""

from http import HTTPStatus

import orjson
from starlette.responses import Response

from simulator.faults import ScriptedError
from simulator.responses import VENDOR_JSON, ApiError
from simulator.state import SimulatorState

_DEFAULT_CODES = {
    401: "invalid_token",
    403: "AccessDenied",
    408: "RequestTimeout",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "UPSTREAM_SERVICE_TIMEOUT",
}


def take_scripted_error(
    state: SimulatorState, path: str, grant_type: str | None = None
) -> ScriptedError | None:
    """The first scripted error matching the request, its count used up by one; None when none matches."""
    rules = list(state.faults.errors)
    for index, rule in enumerate(rules):
        if not path.startswith(rule.path) or (rule.grant_type and rule.grant_type != grant_type):
            continue
        if rule.count is not None:
            if rule.count > 1:
                rules[index] = rule.model_copy(update={"count": rule.count - 1})
            else:
                del rules[index]
            state.faults = state.faults.model_copy(update={"errors": tuple(rules)})
        return rule
    return None


def scripted_response(rule: ScriptedError, path: str, secrets: list[str]) -> Response:
    """The response for a scripted error; `secrets` are the request's credentials, repeated if `echo`."""
    try:
        phrase = HTTPStatus(rule.status).phrase
    except ValueError:
        phrase = "Error"
    echoed = " ".join(secrets) if rule.echo else ""
    if rule.html:
        comment = f"<!-- request {echoed} -->" if echoed else ""
        page = (
            f"<html><head><title>{rule.status} {phrase}</title></head><body><h1>{rule.status} {phrase}</h1>"
        )
        return Response(f"{page}{comment}</body></html>", rule.status, media_type="text/html")
    code = rule.code or _DEFAULT_CODES.get(rule.status, f"HTTP_{rule.status}")
    # Allegro's own 401 text, which is the one that repeats the token.
    head = "Access token expired" if rule.status == 401 else phrase
    text = f"{head}: {echoed}" if echoed else head
    if path.startswith("/auth/") or rule.status == 401:
        body: dict[str, object] = {"error": code, "error_description": text}
        return Response(orjson.dumps(body), rule.status, media_type="application/json")
    error = {
        "code": code,
        "message": text,
        "details": f"Authorization: Bearer {secrets[0]}" if echoed and secrets else None,
        "path": path,
        "userMessage": text,
        "metadata": {"token": secrets[0]} if echoed and secrets else {},
    }
    return Response(orjson.dumps({"errors": [error]}), rule.status, media_type=VENDOR_JSON)


class ScriptedAnswer(ApiError):
    """Raised like any ApiError; answers the scripted response as built."""

    def __init__(self, answer: Response) -> None:
        super().__init__(answer.status_code, {})
        self.answer = answer

    def response(self) -> Response:
        """The scripted response."""
        return self.answer


def raise_scripted(
    state: SimulatorState, path: str, secrets: list[str], grant_type: str | None = None
) -> None:
    """Answer a matching scripted error instead of the real response, if one is set."""
    rule = take_scripted_error(state, path, grant_type)
    if rule is not None:
        raise ScriptedAnswer(scripted_response(rule, path, secrets))
