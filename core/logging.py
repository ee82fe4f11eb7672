"""Structured JSON logging with per-task context (token_id, sync_run_id, checkout_form_id).

Every handler `configure_logging` installs carries `SecretFilter`, the last line of defence behind the
scrubbing done where Allegro's answers become our errors: whatever a message, its `extra=` fields or a
traceback hold, secret-shaped strings are replaced before the line is written.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

from core.redaction import scrub

_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields to every log line written inside the block (per asyncio task)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class SecretFilter(logging.Filter):
    """Scrubs the rendered message, string `extra=` fields and the traceback text of every record."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for name, value in vars(record).items():
            if isinstance(value, str) and name not in _STANDARD_ATTRS:
                setattr(record, name, scrub(value))
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when set, so the scrubbed text is what gets written.
            record.exc_text = scrub(self._tracebacks.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class RetriedKafkaErrorFilter(logging.Filter):
    """aiokafka logs a failed group-coordinator lookup at ERROR even when the error is retriable and it
    retries by itself (`GroupCoordinatorNotAvailableError` at every start of a fresh group, or while a
    broker restarts): such a record becomes a WARNING; anything not retriable stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower the record's level in place; never drops it."""
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno == logging.ERROR and args and getattr(args[0], "retriable", False):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class RepeatedKafkaMessageFilter(logging.Filter):
    """While a broker is away, the Kafka client logs every failed reconnect and metadata refresh (tens a
    second per process): of each such message (same logger, text template and level) one is written per
    `window_seconds`, and the next one written says how many were left out meanwhile."""

    def __init__(self, window_seconds: float = 10.0) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self._last: dict[tuple[str, str, int], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop a repeat inside the window; note the count on the first record after it."""
        if not record.name.startswith(("aiokafka", "kafka")):
            return True
        key = (record.name, str(record.msg), record.levelno)
        now = time.monotonic()
        written_at, left_out = self._last.get(key, (-self.window_seconds, 0))
        if now - written_at < self.window_seconds:
            self._last[key] = (written_at, left_out + 1)
            return False
        self._last[key] = (now, 0)
        if left_out:
            record.msg = f"{record.getMessage()} ({left_out} more like it left out)"
            record.args = None
        return True


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line (python-json-logger): `ts` (ISO 8601, UTC), `level`, `logger`, `msg`, the
    task's `log_context` fields, `extra=` fields, and `exc` (the traceback as `SecretFilter` left it)."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Time first, then the library's fields, with the context under the record's own `extra=`."""
        log_data["ts"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)
        for key, value in (_context.get() or {}).items():
            log_data.setdefault(key, value)
        for key in [key for key in log_data if key.startswith("_")]:
            del log_data[key]
        if record.exc_text:
            # The filter's scrubbed text, not a fresh rendering of the exception.
            log_data["exc"] = record.exc_text


class ContextTextFormatter(logging.Formatter):
    """Readable lines for a terminal, context appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as text."""
        line = super().format(record)
        context = _context.get()
        if context:
            line += " " + " ".join(f"{k}={v}" for k, v in context.items())
        return line


def configure_logging(level: str = "INFO", *, json_logs: bool = True, stream: TextIO | None = None) -> None:
    """Route the root logger to `stream` (default: stderr) in JSON (services) or text (CLI)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ContextTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatedKafkaMessageFilter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    if not any(isinstance(f, RetriedKafkaErrorFilter) for f in coordinator.filters):
        coordinator.addFilter(RetriedKafkaErrorFilter())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
