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
from processors.faust_internals import asks_for_help, help_argv, worker_argv


def main() -> None:
    """The processor's composition root."""
    wants_help = asks_for_help(sys.argv[1:])
    if wants_help:
        # Help needs neither the environment nor Kafka: the app is built from the code's defaults,
        # unvalidated, just to list its commands and options.
        sys.argv[:] = help_argv(sys.argv)
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
    # Faust's CLI reads sys.argv itself: no web server, no banner (processors.faust_internals).
    sys.argv[:] = worker_argv(sys.argv, json_logs=settings.log_json)
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
