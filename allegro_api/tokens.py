"""OAuth responses: the token pair and the device authorization."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt
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
    """A JWT's claims, signature not checked (we hold no key of Allegro's); {} when it is not a JWT."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}
    return claims
