"""`python -m db upgrade|downgrade [REVISION]`: apply or roll back migrations on DATABASE_URL."""

from __future__ import annotations

import argparse

from core.settings import get_settings
from db.migrate import downgrade, upgrade


def main() -> None:
    """Parse the command line and migrate."""
    parser = argparse.ArgumentParser(prog="python -m db", description="Apply or roll back schema migrations.")
    parser.add_argument("action", choices=["upgrade", "downgrade"])
    parser.add_argument("revision", nargs="?", help="target revision (default: head / base)")
    args = parser.parse_args()
    url = get_settings().database.url.get_secret_value()
    if args.action == "upgrade":
        upgrade(url, args.revision or "head")
    else:
        downgrade(url, args.revision or "base")


if __name__ == "__main__":
    main()
