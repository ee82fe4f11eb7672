"""The HTTP/1.1 protocol the API is served with: uvicorn's httptools protocol, except that a request it
refuses before the app sees it answers RFC 9457 problem JSON like every other bad input, not plain text.

Two refusals happen there: a URL longer than `MAX_URL_BYTES` (the most httptools' URL parser reads; a
query parameter thousands of times longer than any this API takes, such as an absurd `cursor`) answers
414, naming the query parameter that ran over when its name is a plain identifier (never its value);
any other malformed request answers 400. Both close the connection, as uvicorn does.
`python -m api` selects it (`uvicorn.run(http=PROTOCOL)`).

It relies on two methods of uvicorn's protocol class that are not public API (`on_url`,
`send_400_response`; uvicorn is pinned in constraints.txt): `tests/api/test_long_urls.py` serves real
requests through it and fails when a uvicorn upgrade changes them.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import PROBLEM_JSON, FieldError, problem_body

# httptools.parse_url refuses a longer URL ("url is too long"), which uvicorn answers with a plain 400.
MAX_URL_BYTES = 65_535
PROTOCOL = "api.http_protocol:ProblemHttpToolsProtocol"
_PARAMETER_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{0,63}")


class UrlTooLong(Exception):
    """Raised from the parser's URL callback: the URL ran past `MAX_URL_BYTES`."""


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with problem JSON for the requests it refuses itself."""

    _url_too_long = False

    def on_url(self, url: bytes) -> None:
        """Collect the URL; stop the parse (a parser error: uvicorn then refuses the request) once it
        runs past MAX_URL_BYTES, without reading the rest."""
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._url_too_long = True
            raise UrlTooLong

    def send_400_response(self, msg: str) -> None:
        """Answer a request the parser refused with problem JSON (414 for a URL too long, else 400) and
        close the connection; `msg` is uvicorn's plain-text reason, not used."""
        if self._url_too_long:
            status, slug, detail, errors = 414, None, *_too_long(self.url)
        else:
            status, slug, detail, errors = 400, "invalid-http-request", "the HTTP request is malformed", None
        body = problem_body(status, detail, slug=slug, errors=errors)
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode(),
            *(name + b": " + value for name, value in self.server_state.default_headers),
            f"content-type: {PROBLEM_JSON}".encode(),
            f"content-length: {len(body)}".encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.transport.close()


def _too_long(url: bytes) -> tuple[str, list[FieldError] | None]:
    """The detail and field errors for a URL cut at MAX_URL_BYTES: the query parameter whose value was
    being read when the limit was reached, when its name is a plain identifier."""
    limit = f"the request URL is longer than {MAX_URL_BYTES} bytes, the most this API reads"
    _, _, query = url.partition(b"?")
    name, equals, _ = query.rpartition(b"&")[2].partition(b"=")
    if not equals or not _PARAMETER_NAME.fullmatch(name):
        return limit, None
    parameter = name.decode()
    detail = f"query parameter {parameter} is far too long: {limit}"
    return detail, [FieldError(loc=["query", parameter], msg=detail, type="string_too_long")]
