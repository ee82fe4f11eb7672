"""`python -m api`: serve the REST API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from core.logging import configure_logging
from core.settings import get_settings


def main() -> None:
    """Parse the command line and serve."""
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m api", description="Serve the Allegro Orders Backup REST API."
    )
    parser.add_argument("--host", default=settings.api.host, help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=settings.api.port, help="port (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument("--log-level", default=settings.log_level, help="default: %(default)s")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")
    args = parser.parse_args()
    configure_logging(args.log_level, json_logs=settings.log_json)
    uvicorn.run(
        "api.app:create_app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level.lower(),
        log_config=None,
        access_log=not args.no_access_log,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
