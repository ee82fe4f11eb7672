"""The product's version, declared once in pyproject.toml and read from the installed distribution: the
REST API's OpenAPI document and the default Allegro User-Agent carry it."""

from __future__ import annotations

from importlib.metadata import version

VERSION: str = version("allegro-orders-backup")
