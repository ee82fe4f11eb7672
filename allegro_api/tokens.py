"""OAuth responses: the token pair and the device authorization."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field


class TokenPair(BaseModel):
    """A token response; unknown fields are ignored (Allegro warns more may appear)."""

    # Tokens never reach logs: repr=False keeps them out of reprs and error messages.
    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    scope: str | None = None
    jti: str | None = None

    def access_expires_at(self, issued_at: datetime) -> datetime:
        """When the access token expires, given when the response was received."""
        return issued_at + timedelta(seconds=self.expires_in)

    @property
    def seller_id(self) -> str | None:
        """The seller's numeric id: the access token's `user_name` claim, read without verification."""
        value = _unverified_claims(self.access_token).get("user_name")
        return str(value) if value is not None else None

    @property
    def scopes(self) -> list[str]:
        """The granted scopes, split."""
        return self.scope.split() if self.scope else []


class DeviceAuthorization(BaseModel):
    """The answer to `POST /auth/oauth/device`; show the user verification_uri exactly as sent."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    device_code: str = Field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int = 5

    def expires_at(self, issued_at: datetime) -> datetime:
        """When the device code stops working, given when the response was received."""
        return issued_at + timedelta(seconds=self.expires_in)


def _unverified_claims(token: str) -> dict[str, Any]:
    """Decode a JWT payload without checking its signature; {} when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
