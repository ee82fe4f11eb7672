"""`/docs` and `/redoc` load everything from this host: they work where the API has no internet."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.asyncio


class _References(HTMLParser):
    """Every URL a page's tags load or link (src, href), and any URL in its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += re.findall(r"""(?:https?:)?//[^\s'"`]+""", data)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_pages_load_only_local_assets_that_answer(
    client: httpx.AsyncClient, page: str, assets: set[str]
) -> None:
    response = await client.get(page, headers={"Authorization": ""})
    assert response.status_code == 200
    urls = _references(response.text)
    assert {url.rsplit("/", 1)[-1] for url in urls} >= assets
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), f"{page} loads {url} from elsewhere"
        assert url.startswith("/")
        asset = await client.get(url, headers={"Authorization": ""})
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert "fonts.googleapis.com" not in response.text
    assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text
