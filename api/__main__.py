"""`python -m api`: serve the REST API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from api.http_protocol import PROTOCOL
from core.logging import configure_logging
from core.settings import get_settings


def main() -> None:
    """Parse the command line (help needs no environment), then read the settings and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m api",
        description="Serve the Allegro Orders Backup REST API. Settings come from the environment "
        "(DATABASE_URL, KAFKA__*, API__*, CRYPTO__KEYS, ALLEGRO__*).",
    )
    parser.add_argument("--host", help="address to bind (default: API__HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: API__PORT, else 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument("--log-level", help="logging level (default: LOG_LEVEL, else INFO)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")
    args = parser.parse_args()
    settings = get_settings()
    log_level: str = args.log_level or settings.log_level
    configure_logging(log_level, json_logs=settings.log_json)
    uvicorn.run(
        "api.app:create_app_from_environment",
        factory=True,
        host=settings.api.host if args.host is None else args.host,
        port=settings.api.port if args.port is None else args.port,
        workers=args.workers,
        log_level=log_level.lower(),
        log_config=None,
        access_log=not args.no_access_log,
        proxy_headers=False,
        # Requests refused before the app answer problem JSON too (api.http_protocol).
        http=PROTOCOL,
    )


if __name__ == "__main__":
    main()
