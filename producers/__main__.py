"""`python -m producers [run|rotate-keys]`: the poller service, or a key rotation of the token rows."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import asdict

import orjson

from core.logging import configure_logging
from core.runtime import freeze_start_up_objects, use_uvloop
from core.settings import get_settings
from producers.app import rotate_keys_command, run_until_signalled


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m producers",
        description="Poll Allegro for every linked seller this process owns and publish orders to Kafka. "
        "Settings come from the environment (KAFKA__*, DATABASE_URL, ALLEGRO__*, POLLER__*, CRYPTO__KEYS).",
    )
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the poller until SIGTERM/SIGINT (the default)")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on 127.0.0.1:PORT (default: POLLER__METRICS_PORT; 0: none)",
    )
    commands.add_parser("rotate-keys", help="re-seal every token row's secrets with the first configured key")
    parser.set_defaults(metrics_port=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    if args.command == "rotate-keys":
        report = asyncio.run(rotate_keys_command(settings))
        sys.stdout.write(orjson.dumps(asdict(report)).decode() + "\n")
        return 0
    freeze_start_up_objects()
    use_uvloop()
    port = settings.poller.metrics_port if args.metrics_port is None else args.metrics_port
    asyncio.run(run_until_signalled(settings, metrics_port=port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
