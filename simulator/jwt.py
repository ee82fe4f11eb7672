"""JWT-shaped tokens: base64url header.payload.signature, signed with HMAC-SHA256."""

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode(payload: dict[str, Any], key: bytes) -> str:
    """Sign `payload` into a compact JWT string."""
    signing_input = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"})) + "." + _b64(orjson.dumps(payload))
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def decode_payload(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped string, or None when it is not one (signature not checked)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None
