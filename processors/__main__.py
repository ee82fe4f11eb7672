"""`python -m processors worker [options]`: ensure the topics, then run the Faust worker."""

from __future__ import annotations

import asyncio
import logging
import sys

from core.logging import configure_logging
from core.runtime import freeze_start_up_objects, use_uvloop
from core.settings import Settings, get_settings
from core.topics import bootstrap
from core.waiting import retry_until_available
from processors.app import create_app


def asks_for_help(argv: list[str]) -> bool:
    """Whether the command line (without the program name) only asks Faust's CLI for its help text.

    `-h` counts before a command only: `worker -h` is the worker's `--web-host`.
    """
    return not argv or "--help" in argv or argv[0] == "-h"


def main() -> None:
    """The processor's composition root."""
    wants_help = asks_for_help(sys.argv[1:])
    if wants_help:
        # Faust's CLI knows --help only; and help needs neither the environment nor Kafka: the app is built
        # from the code's defaults, unvalidated, just to list its commands and options.
        if sys.argv[1:2] in ([], ["-h"]):
            sys.argv[1:2] = ["--help"]
        settings = Settings.model_construct()
    else:
        settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    if not wants_help:
        # Idempotent: creates missing topics with the contract's configs, leaves existing ones alone. A
        # broker that is not up yet is waited for (with backoff) instead of exiting: no supervisor needed.
        asyncio.run(
            retry_until_available(lambda: bootstrap(settings.kafka), what="creating the Kafka topics")
        )
    if "worker" in sys.argv and not any(arg.startswith("--with") for arg in sys.argv):
        # Faust's worker command turns its web server on (bound to 0.0.0.0:6066) unless told otherwise;
        # this app needs none: its metrics are served on 127.0.0.1:PROCESSOR__METRICS_PORT.
        sys.argv.append("--without-web")
    if settings.log_json and "worker" in sys.argv and not {"-q", "--quiet", "--no-quiet"} & set(sys.argv):
        # Faust prints a coloured start-up banner on stdout; with JSON logs that would be the one thing in
        # the process's output that is not a JSON line. Our logs do not go through Faust's output.
        sys.argv.insert(sys.argv.index("worker"), "--quiet")
    app = create_app(settings)
    # The worker holds nothing between batches, so rarer young collections cost it no memory and make
    # the agent faster (docs/PERFORMANCE.md).
    freeze_start_up_objects(young_threshold=50_000)
    use_uvloop()
    if not wants_help:
        logging.getLogger("processors").info(
            "processor worker starting: consumer group %s on %s, %d snapshots per batch at most",
            settings.processor.app_id,
            settings.kafka.snapshots_topic,
            settings.processor.batch_size,
        )
    app.main()


if __name__ == "__main__":
    main()
