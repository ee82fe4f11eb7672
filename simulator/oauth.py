"""The OAuth side: device-code grants, access and refresh tokens, rotation with a grace period."""

import secrets
import string
import time
import uuid
from dataclasses import dataclass

import jwt

from simulator.config import SimulatorConfig

ALL_SCOPES = ("allegro:api:orders:read", "allegro:api:profile:read")
OAuthAnswer = tuple[int, dict[str, object]]
_ALNUM = string.ascii_letters + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits
# Where the person answers a device authorisation (`https://allegro.pl/skojarz-aplikacje` on Allegro,
# reference/allegro/README.md §0 and §1.1); the simulator serves it from `routes_verification`.
VERIFICATION_PATH = "/skojarz-aplikacje"


@dataclass(slots=True)
class DeviceGrant:
    """One device authorisation request waiting for the user."""

    device_code: str
    user_code: str
    scope: tuple[str, ...]
    expires_at: float
    last_poll: float | None = None
    state: str = "pending"  # pending, approved, denied, used
    seller_id: str | None = None


@dataclass(slots=True)
class AccessToken:
    """An issued access token."""

    seller_id: str
    client_id: str
    scope: tuple[str, ...]
    expires_at: float
    revoked: bool = False


@dataclass(slots=True)
class RefreshToken:
    """An issued refresh token; usable until `first_used_at + grace`."""

    seller_id: str
    scope: tuple[str, ...]
    access_token: str
    expires_at: float
    first_used_at: float | None = None
    revoked: bool = False


def _invalid_device_code() -> OAuthAnswer:
    return 400, {"error": "invalid_request", "error_description": "Invalid device code"}


class OAuthServer:
    """Issues and checks tokens for the one registered client."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._key = secrets.token_bytes(32)
        self.devices: dict[str, DeviceGrant] = {}
        self.user_codes: dict[str, str] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    def start_device(self, scope: str | None) -> dict[str, object]:
        """Begin a device authorisation: the body of `POST /auth/oauth/device`."""
        requested = tuple(scope.split()) if scope else ALL_SCOPES
        device_code = "".join(secrets.choice(_ALNUM) for _ in range(32))
        user_code = "".join(secrets.choice(_LOWER_ALNUM) for _ in range(9))
        expires_in = self.config.device_code_expires_in
        grant = DeviceGrant(device_code, user_code, requested, time.time() + expires_in)
        self.devices[device_code] = grant
        self.user_codes[user_code] = device_code
        uri = f"{self.config.public_url}{VERIFICATION_PATH}"
        return {
            "device_code": device_code,
            "expires_in": expires_in,
            "user_code": user_code,
            "interval": self.config.device_poll_interval,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?code={user_code}",
        }

    def grant_for_user_code(self, user_code: str) -> DeviceGrant | None:
        """The grant a user code belongs to, in whatever state (`device_decisions` judges it)."""
        return self.devices.get(self.user_codes.get(user_code, ""))

    def poll_device(self, device_code: str) -> OAuthAnswer:
        """One poll of the token endpoint with the device-code grant."""
        grant = self.devices.get(device_code)
        now = time.time()
        if grant is None or grant.state == "used" or now >= grant.expires_at:
            return _invalid_device_code()
        too_fast = grant.last_poll is not None and now - grant.last_poll < self.config.device_poll_interval
        grant.last_poll = now
        if grant.state == "denied":
            return 400, {"error": "access_denied"}
        if too_fast:
            return 400, {"error": "slow_down"}
        if grant.state == "pending" or grant.seller_id is None:
            return 400, {
                "error": "authorization_pending",
                "error_description": "User has not authorized the device code yet.",
            }
        grant.state = "used"
        return 200, self._issue(grant.seller_id, grant.scope)

    def use_refresh_token(self, token: str) -> OAuthAnswer:
        """The refresh-token grant: a new pair; the old refresh token lives on for the grace period."""
        record = self.refresh.get(token)
        now = time.time()
        grace = self.config.refresh_grace_seconds
        if (
            record is None
            or record.revoked
            or now >= record.expires_at
            or (record.first_used_at is not None and now - record.first_used_at > grace)
        ):
            return 400, {"error": "invalid_grant", "error_description": f"Invalid refresh token: {token}"}
        if record.first_used_at is None:
            record.first_used_at = now
        old_access = self.access.get(record.access_token)
        if old_access is not None:
            old_access.revoked = True
        return 200, self._issue(record.seller_id, record.scope)

    def issue_linked(self, seller_id: str, scope: tuple[str, ...]) -> dict[str, object]:
        """A token pair for `seller_id` as if its device flow had just completed (bulk linking)."""
        return self._issue(seller_id, scope)

    def _issue(self, seller_id: str, scope: tuple[str, ...]) -> dict[str, object]:
        now = time.time()
        expires_in = self.config.access_token_expires_in
        client_id = self.config.client_id
        jti = str(uuid.uuid4())
        claims: dict[str, object] = {
            "user_name": seller_id,
            "scope": list(scope),
            "client_id": client_id,
            "allegro_api": True,
            "iss": "https://allegro.pl",
        }
        access = jwt.encode(
            {**claims, "exp": int(now) + expires_in, "jti": jti}, self._key, algorithm="HS256"
        )
        refresh_expiry = now + self.config.refresh_token_expires_in
        refresh = jwt.encode(
            {**claims, "exp": int(refresh_expiry), "jti": str(uuid.uuid4()), "ati": jti},
            self._key,
            algorithm="HS256",
        )
        self.access[access] = AccessToken(seller_id, client_id, scope, now + expires_in)
        self.refresh[refresh] = RefreshToken(seller_id, scope, access, refresh_expiry)
        return {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": expires_in,
            "scope": " ".join(scope),
            "allegro_api": True,
            "jti": jti,
        }

    def check_access(self, token: str) -> AccessToken | str:
        """The live token record, or the error description for a 401."""
        try:
            # The record below decides validity; this is only Allegro's check that it is a JWT at all.
            jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return "Cannot convert access token to JSON"
        record = self.access.get(token)
        if record is None or record.revoked or time.time() >= record.expires_at:
            return f"Access token expired: {token}"
        return record

    def revoke_seller(self, seller_id: str) -> int:
        """Kill every access and refresh token of a seller; returns how many."""
        killed = 0
        for store in (self.access, self.refresh):
            for record in store.values():
                if record.seller_id == seller_id and not record.revoked:
                    record.revoked = True
                    killed += 1
        return killed

    def expire_seller(self, seller_id: str) -> int:
        """Make the seller's live access tokens expire now (refresh still works)."""
        now, expired = time.time(), 0
        for record in self.access.values():
            if record.seller_id == seller_id and not record.revoked and record.expires_at > now:
                record.expires_at = now
                expired += 1
        return expired
