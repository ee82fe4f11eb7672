"""A person's answer to a device authorisation: approve it for a seller account, or deny it.

The one place that changes a grant's state on the user's side; both the control API
(`POST /_sim/device/approve|deny`) and the verification page (`/skojarz-aplikacje`) call it, so a code
approved through either is polled the same way (reference/allegro/README.md §1.2).
"""

import time
from enum import Enum

from simulator.oauth import DeviceGrant
from simulator.state import SimulatorState


class Refusal(Enum):
    """Why an answer was not taken."""

    UNKNOWN_CODE = "unknown_code"
    EXPIRED_CODE = "expired_code"
    # Approved (polled or not) or denied already: a code takes one answer.
    ANSWERED_CODE = "answered_code"
    UNKNOWN_SELLER = "unknown_seller"


class DecisionRefused(Exception):
    """The answer changed nothing; `reason` says why, `grant` is the code's grant when there is one."""

    def __init__(
        self,
        reason: Refusal,
        user_code: str,
        grant: DeviceGrant | None = None,
        seller_id: str | None = None,
    ) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.user_code = user_code
        self.grant = grant
        self.seller_id = seller_id


def pending_grant(state: SimulatorState, user_code: str) -> DeviceGrant:
    """The grant of a code that still waits for an answer; raises `DecisionRefused` otherwise."""
    grant = state.oauth.grant_for_user_code(user_code)
    if grant is None:
        raise DecisionRefused(Refusal.UNKNOWN_CODE, user_code)
    if grant.state != "pending":
        raise DecisionRefused(Refusal.ANSWERED_CODE, user_code, grant)
    if time.time() >= grant.expires_at:
        raise DecisionRefused(Refusal.EXPIRED_CODE, user_code, grant)
    return grant


def approve(state: SimulatorState, user_code: str, seller_id: str) -> DeviceGrant:
    """Approve a pending code for a seller: the next poll of its device code gets that seller's tokens."""
    grant = pending_grant(state, user_code)
    if seller_id not in state.book.sellers:
        raise DecisionRefused(Refusal.UNKNOWN_SELLER, user_code, grant, seller_id)
    grant.state, grant.seller_id = "approved", seller_id
    return grant


def deny(state: SimulatorState, user_code: str) -> DeviceGrant:
    """Deny a pending code: the next poll of its device code answers `access_denied`."""
    grant = pending_grant(state, user_code)
    grant.state = "denied"
    return grant
