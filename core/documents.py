"""Stored checkout forms: the exact JSON text is the document of record; what is derived from it.

- `content_hash`: SHA-256 of the text's UTF-8 bytes. Two snapshots are the same content when their texts
  are equal, whatever their revision labels say; the hash is how the sink and PostgreSQL compare them.
- `jsonb_text`: the text PostgreSQL's jsonb takes for the query copy (`order_data`). jsonb refuses
  `\\u0000` and escaped lone surrogates (PostgreSQL docs, 8.14 "JSON Types"), which are valid JSON and
  which buyer-typed fields do hold; in the query copy they become `\\ufffd`. The text of record keeps them.
- `member_span`: where one top-level member's value lies in a JSON object's text (the `order` of an
  `allegro.orders` / `allegro.order-revisions` record), so a replay stores the form as it was published.
"""

from __future__ import annotations

import hashlib
import json
import re

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")

# Left to right, every escape is consumed whole, so `\\u0000` (an escaped backslash, then "u0000") is
# never read as U+0000. Backslashes occur only inside JSON strings, so no string boundary is needed.
_ESCAPES = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a surrogate pair: jsonb takes it
    r"|\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"  # U+0000, a lone surrogate: jsonb refuses them
    r"|\\."  # any other escape
)
_REFUSED_LENGTH = 6  # `\u0000` and a lone surrogate's escape; pairs are 12 characters, others 2


def content_hash(text: str) -> bytes:
    """The 32-byte SHA-256 of the form's text (UTF-8)."""
    return hashlib.sha256(text.encode()).digest()


def jsonb_text(text: str) -> str | None:
    """The text for the jsonb query copy when it must differ from `text` (None when `text` itself fits)."""
    # The common case (no escape at all: Allegro escapes only quotes, backslashes and control characters)
    # is one memchr-speed scan; a 2-character search costs ten times as much.
    if "\\" not in text or "\\u" not in text:
        return None
    sanitised = _ESCAPES.sub(_replace_refused, text)
    return None if sanitised == text else sanitised


def _replace_refused(match: re.Match[str]) -> str:
    escape = match.group()
    return "\\ufffd" if len(escape) == _REFUSED_LENGTH else escape


def member_span(document: str, name: str) -> tuple[int, int] | None:
    """Start and end of the value of the top-level member `name` in the JSON object `document` (None if
    absent).

    Raises ValueError when `document` is not a JSON object."""
    try:
        position = _skip(document, 0)
        if document[position] != "{":
            raise ValueError("not a JSON object")
        position = _skip(document, position + 1)
        while document[position] != "}":
            key, position = json.decoder.scanstring(document, position + 1)  # type: ignore[attr-defined]
            position = _skip(document, position)
            if document[position] != ":":
                raise ValueError("no colon after a member name")
            start = _skip(document, position + 1)
            _, end = _DECODER.raw_decode(document, start)
            if key == name:
                return start, end
            position = _skip(document, end)
            if document[position] == ",":
                position = _skip(document, position + 1)
    except IndexError as exc:
        raise ValueError("truncated JSON object") from exc
    return None


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position
