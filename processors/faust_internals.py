"""Every place the worker relies on Faust's, mode's or aiokafka's internals, in one module.

The pins in `pyproject.toml` (faust-streaming, mode-streaming, aiokafka: exact versions) hold these
versions; `tests/processors/test_faust_internals.py` checks that each internal listed in `RELIED_ON`
still exists and behaves as used here, and fails when a different version is installed.

What is relied on, and why:

- the consumer's per-message hand-over (`DeliveringConsumer`, `Transport`, `WorkerApp`): Faust's fetch
  loop (`Consumer._drain_messages`) hands every message to the topic conductor through
  `Service.wait_first(callback(message), suspend_flow.wait())`: the callback and three stop signals
  (suspended flow, consumer stopped, consumer crashed) each become a task, and the three losers are
  cancelled again, for every message, about a fifth of the worker's event-loop thread (docs/PERFORMANCE.md).
  `DeliveringConsumer` recognises that call by the callback's code object (`cr_code`), runs the delivery
  as one task that `stop_flow` cancels (a rebalance suspending the flow still abandons a waiting
  delivery), and passes any other `wait_first` call to Faust's own. The app plugs the transport in by
  overriding `App._new_transport`;
- acks held until stored (`withhold_acks`, `release_acks`): `take_events` acks a batch's events when
  the agent asks for the next batch, long before they are stored; `Consumer.ack` skips a message whose
  `acked` flag is set, so the flag is set first and cleared again right before the real `Event.ack`;
- a quiet monitor (`QuietMonitor`): the per-message statistics hooks of `faust.sensors.Monitor` are
  no-ops, nothing reads them;
- the worker's output (`PlainOutputWorker`, `real_stderr`, `worker_argv`): Faust's worker draws a
  spinner (`Worker.spinner`) even into a pipe; its worker command swaps `sys.stderr` for a proxy that
  feeds its own logging (a handler writing into it meets the proxy's recursion guard, and the record is
  dropped), so our logs go to `sys.__stderr__`; its command line turns a web server on unless told
  `--without-web`, prints a banner unless `--quiet`, and knows `--help` but not `-h` or a bare call
  (`asks_for_help`, `help_argv`);
- a service instance, not a class, passed to `App.service` (`App._prepare_subservice` takes either).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import faust
from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP, EventT, Message, StreamT, TransportT
from mode.services import WaitResults

# (owner, attribute): each internal this module relies on; the test checks every one exists.
RELIED_ON: tuple[tuple[type[Any], str], ...] = (
    (faust_kafka.Consumer, "_drain_messages"),  # calls wait_first(callback(message), suspend_flow.wait())
    (faust_kafka.Consumer, "wait_first"),  # mode.Service.wait_first(*coros, timeout=None) -> WaitResults
    (faust_kafka.Consumer, "stop_flow"),  # sets suspend_flow on a rebalance
    (faust_kafka.Consumer, "ack"),  # skips a message whose `acked` is set
    (faust_kafka.Transport, "Consumer"),  # the consumer class a transport creates
    (faust.App, "_new_transport"),  # builds the consumer transport
    (faust.App, "_prepare_subservice"),  # App.service accepts an instance
    (faust.Worker, "spinner"),  # None: no spinner
    (Monitor, "on_message_in"),
    (Monitor, "on_stream_event_in"),
    (Monitor, "on_stream_event_out"),
    (Monitor, "on_message_out"),
)


class DeliveringConsumer(faust_kafka.Consumer):
    """Faust's aiokafka consumer, delivering each fetched message as one task instead of four."""

    _delivery: asyncio.Task[Any] | None = None

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 (Faust's signature)
        if not self._is_delivery(coros, timeout) or self.suspend_flow.is_set() or self.should_stop:
            return await super().wait_first(*coros, timeout=timeout)
        deliver, suspended = coros
        suspended.close()  # never started: the flow's suspension is watched by stop_flow instead
        delivery = self._delivery = self.loop.create_task(deliver)
        try:
            result = await delivery
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if delivery.cancelled() and current is not None and not current.cancelling():
                # stop_flow cancelled the delivery, not the loop: as Faust's own, skip to the next message.
                return WaitResults([], [], True)
            raise
        finally:
            self._delivery = None
        return WaitResults([deliver], [result], False)

    def stop_flow(self) -> None:
        super().stop_flow()
        if self._delivery is not None:
            self._delivery.cancel()

    def _is_delivery(self, coros: tuple[Any, ...], timeout: Any) -> bool:
        """True for the fetch loop's call: a coroutine of this consumer's callback (the conductor's, called
        from nowhere else), with a second coroutine beside it, the flow's signal."""
        return (
            timeout is None
            and len(coros) == 2
            and asyncio.iscoroutine(coros[0])
            and asyncio.iscoroutine(coros[1])
            and getattr(coros[0], "cr_code", None) is getattr(self.callback, "__code__", None)
        )


class Transport(faust_kafka.Transport):
    """Faust's aiokafka transport with `DeliveringConsumer`."""

    Consumer = DeliveringConsumer


class QuietMonitor(Monitor):
    """Faust's monitor without its per-message statistics (counts per partition, each event's runtime):
    nothing reads them here (no Faust web server; the worker's metrics are `processors.metrics`), and
    keeping them cost the worker about 3 % of its CPU."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        pass

    def on_stream_event_in(self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]) -> None:
        pass

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        pass

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        pass


class PlainOutputWorker(faust.Worker):
    """Faust's worker without its terminal spinner when stdout is not a terminal: the spinner writes
    cursor codes even into a log file or a pipe, where only the JSON log lines belong."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.stdout.isatty():
            self.spinner = None


class WorkerApp(faust.App):
    """A Faust app whose consumer hands messages to the agents more cheaply (`DeliveringConsumer`)."""

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)


def withhold_acks(events: Sequence[Any]) -> None:
    """Make Faust's own ack of these events a no-op (Consumer.ack skips a message flagged acked)."""
    for event in events:
        event.message.acked = True


def release_acks(events: Sequence[Any]) -> None:
    """Ack events whose ack was withheld, now that they are stored: their offsets may be committed.

    `Event.ack`, not `Stream.ack`: the stream's sensors already counted these events out when
    `take_events` acked them (as a no-op)."""
    for event in events:
        event.message.acked = False
        event.ack()


def real_stderr() -> TextIO:
    """The process's own stderr, not the proxy Faust's worker command puts in `sys.stderr`."""
    return sys.__stderr__ or sys.stderr


def asks_for_help(argv: list[str]) -> bool:
    """Whether the command line (without the program name) only asks Faust's CLI for its help text.

    `-h` counts before a command only: `worker -h` is the worker's `--web-host`.
    """
    return not argv or "--help" in argv or argv[0] == "-h"


def help_argv(argv: list[str]) -> list[str]:
    """Faust's CLI knows `--help` only, not a bare call or `-h` before a command."""
    if argv[1:2] in ([], ["-h"]):
        return [*argv[:1], "--help", *argv[2:]]
    return list(argv)


def worker_argv(argv: list[str], *, json_logs: bool) -> list[str]:
    """Faust's command line for our worker: no web server (metrics are served by `processors.resources`
    on 127.0.0.1:PROCESSOR__METRICS_PORT), and no banner on stdout when the logs are JSON lines."""
    argv = list(argv)
    if "worker" in argv and not any(arg.startswith("--with") for arg in argv):
        # Faust's worker command turns its web server on (bound to 0.0.0.0:6066) unless told otherwise.
        argv.append("--without-web")
    if json_logs and "worker" in argv and not {"-q", "--quiet", "--no-quiet"} & set(argv):
        # The coloured start-up banner would be the one thing in the output that is not a JSON line.
        argv.insert(argv.index("worker"), "--quiet")
    return argv
