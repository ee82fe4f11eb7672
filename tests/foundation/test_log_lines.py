"""The JSON log line's fields, as operators and the tests that read logs use them."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from uuid import uuid4

from core.logging import configure_logging, log_context


def _lines(emit: logging.Logger) -> list[dict[str, object]]:
    stream = io.StringIO()
    configure_logging("INFO", json_logs=True, stream=stream)
    token_id = str(uuid4())
    with log_context(token_id=token_id, sync_run_id="run-1"):
        emit.info("stored %d orders", 3, extra={"orders": 3, "_private": "x"})
        emit.info("overridden", extra={"sync_run_id": "run-2"})
        try:
            raise KeyError("missing")
        except KeyError:
            emit.exception("failed")
    emit.warning("outside any context")
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_carries_time_level_logger_message_context_and_extra_fields() -> None:
    before = datetime.now(UTC)
    first, overridden, failed, outside = _lines(logging.getLogger("processors.handler"))
    assert set(first) == {"ts", "level", "logger", "msg", "token_id", "sync_run_id", "orders"}
    assert (first["level"], first["logger"], first["msg"], first["orders"]) == (
        "INFO",
        "processors.handler",
        "stored 3 orders",
        3,
    )
    stamp = datetime.fromisoformat(str(first["ts"]))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert str(first["ts"]).count(".") == 1 and len(str(first["ts"]).split(".")[1]) == len("000+00:00")
    assert before.replace(microsecond=0) <= stamp <= datetime.now(UTC)
    assert overridden["sync_run_id"] == "run-2"  # a record's own field wins over the task's context
    assert failed["level"] == "ERROR" and "KeyError: 'missing'" in str(failed["exc"])
    assert "token_id" not in outside and outside["level"] == "WARNING"
