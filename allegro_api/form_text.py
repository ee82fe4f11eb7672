"""Checkout forms as the exact JSON text Allegro sent: decoding that tolerates every valid JSON string, and
the byte span of each form inside a list page.

A form is stored and served as the bytes Allegro sent, so nothing here re-encodes one. orjson decodes
fast but refuses escaped lone surrogates (`"\\ud800"`), which are valid JSON text (RFC 8259 §8.2 leaves
them to the receiver); the standard library's decoder takes them. So orjson decodes first and the
standard library only what orjson refused.

A list page's forms are cut out of the body: in Allegro's compact JSON each form's bytes equal orjson's
encoding of its decoded value, which is checked form by form; where one differs (other escapes, other
number spellings, whitespace), the standard library's scanner, which reports where each value ends,
cuts the page instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from allegro_api.errors import UnexpectedResponse

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE_BYTES = re.compile(rb"[ \t\n\r]*")
_PAGE_START = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"checkoutForms"[ \t\n\r]*:[ \t\n\r]*\[')


def decode_object(content: bytes) -> dict[str, Any]:
    """Decode a JSON object body (lone surrogates survive in the strings); raises UnexpectedResponse."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        data = _decode_slowly(content)
    if not isinstance(data, dict):
        raise UnexpectedResponse("response body is not a JSON object")
    return data


def _decode_slowly(content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnexpectedResponse("response body is not JSON") from exc


def strip_whitespace(content: bytes) -> bytes:
    """The body without the whitespace JSON allows around its value (a detail GET's form is the body)."""
    return content.strip(b" \t\n\r")


def page_form_texts(content: bytes, items: list[Any]) -> list[bytes]:
    """The exact bytes of each form in a list page's `checkoutForms` array, whose decoded values are
    `items`. Raises UnexpectedResponse when the body holds no such array of that length."""
    fast = _cut_by_reencoding(content, items)
    return fast if fast is not None else _cut_by_scanning(content, len(items))


def _cut_by_reencoding(content: bytes, items: list[Any]) -> list[bytes] | None:
    """Spans found by matching each decoded form's orjson encoding at its place; None if one differs."""
    start = _PAGE_START.match(content)
    if start is None:
        return None
    texts: list[bytes] = []
    position = start.end()
    for index, item in enumerate(items):
        position = _skip_bytes(content, position)
        if index:
            if content[position : position + 1] != b",":
                return None
            position = _skip_bytes(content, position + 1)
        try:
            encoded = orjson.dumps(item)
        except orjson.JSONEncodeError:  # a lone surrogate, which only the slow decoder let through
            return None
        if not content.startswith(encoded, position):
            return None
        texts.append(encoded)
        position += len(encoded)
    return texts


def _skip_bytes(content: bytes, position: int) -> int:
    match = _WHITESPACE_BYTES.match(content, position)
    return match.end() if match else position


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _cut_by_scanning(content: bytes, count: int) -> list[bytes]:
    """Spans found by walking the page's top-level members with the standard library's scanner."""
    try:
        text = content.decode("utf-8")
        texts = _scan_page(text)
    except (UnicodeDecodeError, ValueError, IndexError) as exc:
        raise UnexpectedResponse("response body is not a JSON list page") from exc
    if len(texts) != count:
        raise UnexpectedResponse("checkoutForms changed length between two readings")
    return texts


def _scan_page(text: str) -> list[bytes]:
    position = _skip(text, 0)
    if text[position] != "{":
        raise ValueError("not an object")
    position = _skip(text, position + 1)
    texts: list[bytes] = []
    while text[position] != "}":
        name, position = json.decoder.scanstring(text, position + 1)  # type: ignore[attr-defined]
        position = _skip(text, position)
        if text[position] != ":":
            raise ValueError("no colon after a member name")
        position = _skip(text, position + 1)
        if name == "checkoutForms" and text[position] == "[":
            texts, position = _scan_array(text, position)
        else:
            _, position = _DECODER.raw_decode(text, position)
        position = _skip(text, position)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return texts


def _scan_array(text: str, position: int) -> tuple[list[bytes], int]:
    texts: list[bytes] = []
    position = _skip(text, position + 1)
    while text[position] != "]":
        _, end = _DECODER.raw_decode(text, position)
        texts.append(text[position:end].encode("utf-8"))
        position = _skip(text, end)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return texts, position + 1


def storable_text(value: str) -> str:
    """`value` with U+0000 and lone surrogates replaced by U+FFFD: fit for a PostgreSQL text column or a
    JSON encoder (the indexed columns hold this; the form's own text is never changed)."""
    if "\x00" not in value and not _has_surrogate(value):
        return value
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
