"""Log levels that tell an operator what needs attention."""

from __future__ import annotations

import io
import json
import logging

from aiokafka import errors

from core.logging import configure_logging


def test_a_retried_coordinator_lookup_is_a_warning_and_a_fatal_one_stays_an_error() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_logs=True, stream=stream)
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.error("Group Coordinator Request failed: %s", errors.CoordinatorNotAvailableError())
    coordinator.error("Group Coordinator Request failed: %s", errors.GroupAuthorizationFailedError())
    levels = [json.loads(line)["level"] for line in stream.getvalue().splitlines()]
    assert levels == ["WARNING", "ERROR"]
