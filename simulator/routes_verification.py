"""The verification page a person opens from `verification_uri(_complete)`: enter the code, pick the seller
account (the simulator has no sign-in), approve or deny, as at `https://allegro.pl/skojarz-aplikacje`
(reference/allegro/README.md §0, §1.1). Plain server-rendered HTML, no script, no external asset.

The answer goes through `device_decisions`, the same state change as `POST /_sim/device/approve|deny`.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from simulator import device_decisions
from simulator.deps import StateDep
from simulator.device_decisions import DecisionRefused, Refusal
from simulator.oauth import VERIFICATION_PATH
from simulator.state import SimulatorState

router = APIRouter()

# No script, style only inline, forms post back here only, no framing.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
}
# A user code is 9 characters; anything far longer is no code, and is not echoed back whole.
_MAX_CODE_INPUT = 32


@dataclass(frozen=True, slots=True)
class Message:
    """A line shown above the form."""

    kind: Literal["error", "success", "info"]
    text: str


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    # Built on first use (never at import) and immutable afterwards; autoescape covers every value.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("simulator", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def normalise_code(raw: str) -> str:
    """A code as typed (`EHX ROJ-2JZ`) in its issued form (`ehxroj2jz`): letters and digits, lower case."""
    return "".join(ch for ch in raw[:_MAX_CODE_INPUT].lower() if ch.isascii() and ch.isalnum())


def _refusal_message(state: SimulatorState, error: DecisionRefused) -> tuple[int, Message]:
    code = error.user_code
    if error.reason is Refusal.UNKNOWN_CODE:
        text = f"No application asked for the code “{code}”. Check the code the application shows you."
        return 404, Message("error", text)
    if error.reason is Refusal.EXPIRED_CODE:
        text = f"The code “{code}” has expired. Start linking again in the application to get a new one."
        return 410, Message("error", text)
    if error.reason is Refusal.UNKNOWN_SELLER:
        return 422, Message("error", "Choose one of the seller accounts listed.")
    grant = error.grant
    if grant is not None and grant.state == "denied":
        return 409, Message("info", f"The code “{code}” was already denied; it cannot be used again.")
    seller = state.book.sellers.get(grant.seller_id or "") if grant is not None else None
    whom = f" for seller {seller.login} ({seller.seller_id})" if seller is not None else ""
    return 409, Message("info", f"The code “{code}” was already approved{whom}; it cannot be used again.")


def _render(
    state: SimulatorState,
    *,
    status: int = 200,
    code: str = "",
    message: Message | None = None,
    show_form: bool = True,
    selected_seller: str | None = None,
) -> HTMLResponse:
    sellers = list(state.book.sellers.values())
    if selected_seller is None and len(sellers) == 1:
        selected_seller = sellers[0].seller_id
    grant = state.oauth.grant_for_user_code(code) if code else None
    scopes = list(grant.scope) if grant is not None and grant.state == "pending" else []
    html = (
        _templates()
        .get_template("verification.html")
        .render(
            action=VERIFICATION_PATH,
            code=code,
            message=message,
            show_form=show_form,
            sellers=sellers,
            selected_seller=selected_seller,
            scopes=scopes,
        )
    )
    return HTMLResponse(html, status, headers=_HEADERS)


@router.get(VERIFICATION_PATH, include_in_schema=False)
async def verification_page(state: StateDep, code: str = "") -> HTMLResponse:
    """The form, pre-filled from `?code=`; a code that can no longer be answered is said so at once."""
    user_code = normalise_code(code)
    if not user_code:
        return _render(state)
    try:
        device_decisions.pending_grant(state, user_code)
    except DecisionRefused as error:
        # The page itself exists: 200, with the reason the code cannot be used.
        _, message = _refusal_message(state, error)
        return _render(state, code=user_code, message=message)
    return _render(state, code=user_code)


@router.post(VERIFICATION_PATH, include_in_schema=False)
async def answer_verification(request: Request, state: StateDep) -> HTMLResponse:
    """Form body `user_code`, `seller_id`, `decision` (`approve` | `deny`): answer the code."""
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    form = {key: values[0] for key, values in parsed.items()}
    user_code = normalise_code(form.get("user_code", ""))
    seller_id = form.get("seller_id", "")
    decision = form.get("decision", "")
    if not user_code:
        return _render(state, status=400, message=Message("error", "Enter the code the application shows."))
    if decision not in ("approve", "deny"):
        return _render(state, status=400, code=user_code, message=Message("error", "Choose Approve or Deny."))
    try:
        if decision == "approve":
            device_decisions.approve(state, user_code, seller_id)
        else:
            device_decisions.deny(state, user_code)
    except DecisionRefused as error:
        status, message = _refusal_message(state, error)
        return _render(state, status=status, code=user_code, message=message, selected_seller=seller_id)
    if decision == "deny":
        text = "You denied access. The application gets no access to your account; you can close this page."
        return _render(state, message=Message("info", text), show_form=False)
    seller = state.book.sellers[seller_id]
    text = (
        f"Done: the application is linked to seller {seller.login} ({seller.seller_id}). "
        "It receives its access at its next check; you can close this page."
    )
    return _render(state, message=Message("success", text), show_form=False)
