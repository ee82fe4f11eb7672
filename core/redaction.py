"""Scrubbing secrets out of text that leaves its column: error messages, log lines, sync-run records.

Secrets (access and refresh tokens, device codes, client secrets, sealed values) live in their sealed
columns only. Upstream bodies echo them (Allegro's 401 says "Access token expired: <token>", its
`invalid_grant` says "Invalid refresh token: <token>"), so any text built from a response is scrubbed
before it becomes a log line, a Kafka record, a database row or an API answer.

Two layers, both in `scrub(text, known)`:

- known values: the exact secrets of the current call, replaced wherever they appear;
- shapes, for secrets nobody told us about: JWTs, `Bearer`/`Basic` credentials, `name=value` pairs
  named like a secret (`access_token=...`, `client_secret: ...`), and long opaque strings that mix
  upper- and lower-case letters (device codes, refresh tokens of other formats, sealed values).
  UUIDs, hex ids (trace ids, revisions) and numbers are left alone: they are what an operator needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# Known secrets shorter than this are not replaced by value: a 3-character "secret" would shred text.
MIN_KNOWN_LENGTH = 6

_JWT = r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
_CREDENTIAL = r"(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"
_NAMED = (
    r"(?i:\b(?P<name>access[_-]?token|refresh[_-]?token|device[_-]?code|client[_-]?secret|id[_-]?token"
    r"|password|secret|api[_-]?key)\b)(?P<sep>[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+"
)
# A run of token characters long enough to be a credential; judged by `_opaque` below.
_RUN = r"[A-Za-z0-9._~+/=:-]{24,}"
_PATTERN = re.compile(f"(?P<jwt>{_JWT})|(?P<cred>{_CREDENTIAL})|{_NAMED}|(?P<run>{_RUN})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F:-]+")
_SEPARATORS = re.compile(r"[./:=]")


def _opaque(run: str) -> bool:
    """Whether a long run of token characters looks like a credential rather than an id or a name.

    Random credentials mix upper- and lower-case letters (and usually digits) within one long
    segment; ids an operator needs (UUIDs, hex trace ids, numeric event ids) and dotted or slashed
    names (`allegro.sync-runs`, `sqlalchemy.exc.OperationalError`, file paths) do not.
    """
    if _HEX.fullmatch(run) or _UUID.fullmatch(run):
        return False
    return any(_random_looking(segment) for segment in _SEPARATORS.split(run))


def _random_looking(segment: str) -> bool:
    if len(segment) < 20:
        return False
    upper = sum(c.isupper() for c in segment)
    lower = sum(c.islower() for c in segment)
    if not (upper and lower):
        return False
    if any(c.isdigit() for c in segment):
        return True
    # No digit: a CamelCase name has a capital per word (about 1 in 6 letters), random text about half.
    return len(segment) >= 32 and upper >= (upper + lower) / 4


def _replace(match: re.Match[str]) -> str:
    if match.group("jwt") or match.group("cred"):
        prefix = match.group(0).split()[0] + " " if match.group("cred") else ""
        return prefix + REDACTED
    if match.group("name"):
        return f"{match.group('name')}{match.group('sep')}{REDACTED}"
    run = match.group("run")
    return REDACTED if _opaque(run) else run


def scrub(text: str, known: Iterable[str | None] = ()) -> str:
    """`text` with every known secret and every secret-shaped string replaced by `[redacted]`."""
    for secret in sorted({s for s in known if s and len(s) >= MIN_KNOWN_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _PATTERN.sub(_replace, text)


def scrub_optional(text: str | None, known: Iterable[str | None] = ()) -> str | None:
    """`scrub` for optional text: None stays None."""
    return None if text is None else scrub(text, known)
