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


def test_a_kafka_message_repeated_while_a_broker_is_away_is_written_once_per_window() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_logs=True, stream=stream)
    client = logging.getLogger("aiokafka")
    for _ in range(50):
        client.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused")
    ours = logging.getLogger("producers.poller")
    for _ in range(3):
        ours.warning("scan failed, PostgreSQL unavailable")
    messages = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    assert messages.count("Unable connect to node with id 1: [Errno 111] Connection refused") == 1
    # our own messages are never thinned out
    assert messages.count("scan failed, PostgreSQL unavailable") == 3


def test_the_first_repeat_after_the_window_says_how_many_were_left_out() -> None:
    from core.logging import RepeatedKafkaMessageFilter

    repeats = RepeatedKafkaMessageFilter(window_seconds=0.0)
    record = logging.makeLogRecord(
        {"name": "aiokafka", "msg": "Unable to update metadata from %s", "args": (1,)}
    )
    assert repeats.filter(record)
    held = RepeatedKafkaMessageFilter(window_seconds=60.0)
    first = logging.makeLogRecord({"name": "aiokafka", "msg": "m %s", "args": (1,)})
    assert held.filter(first)
    assert not held.filter(logging.makeLogRecord({"name": "aiokafka", "msg": "m %s", "args": (1,)}))
    held.window_seconds = 0.0
    later = logging.makeLogRecord({"name": "aiokafka", "msg": "m %s", "args": (1,)})
    assert held.filter(later)
    assert later.getMessage() == "m 1 (1 more like it left out)"
