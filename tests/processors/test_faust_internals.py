"""The Faust, mode and aiokafka internals the worker relies on (`processors.faust_internals`) are there
and behave as used: these tests fail when another version of those libraries is installed."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faust
import faust.cli.base
import faust.cli.worker
import mode
import pytest
from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types.tuples import TP, Message
from mode.services import WaitResults

from processors.faust_internals import (
    RELIED_ON,
    DeliveringConsumer,
    QuietMonitor,
    Transport,
    asks_for_help,
    help_argv,
    real_stderr,
    release_acks,
    withhold_acks,
    worker_argv,
)
from tests.processors.unstarted import unstarted_consumer, worker_app

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PINNED = ("faust-streaming", "mode-streaming", "aiokafka")


async def _deliver(message: Message) -> None:
    return None


def _consumer(app: faust.App) -> Any:
    return unstarted_consumer(app, _deliver)


def _app() -> faust.App:
    return worker_app("internals")


def test_the_installed_versions_are_the_pinned_ones() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for name in PINNED:
        (pin,) = [d for d in dependencies if re.match(rf"{re.escape(name)}\s*==", d)]
        assert version(name) == pin.split("==", 1)[1].strip(), name


@pytest.mark.parametrize(("owner", "attribute"), RELIED_ON, ids=lambda x: getattr(x, "__name__", str(x)))
def test_every_internal_relied_on_exists(owner: type[Any], attribute: str) -> None:
    annotations = {k for cls in owner.__mro__ for k in getattr(cls, "__annotations__", {})}
    assert hasattr(owner, attribute) or attribute in annotations


def test_the_fetch_loop_hands_each_message_over_as_delivering_consumer_expects() -> None:
    source = inspect.getsource(faust_kafka.Consumer._drain_messages)
    assert "callback = self.callback" in source
    assert re.search(r"self\.wait_first\(\s*callback\(message\),\s*self\.suspend_flow\.wait\(\)\s*\)", source)
    wait_first = inspect.signature(faust_kafka.Consumer.wait_first).parameters
    assert wait_first["coros"].kind is inspect.Parameter.VAR_POSITIONAL
    assert wait_first["timeout"].default is None
    assert WaitResults._fields == ("done", "results", "stopped")
    assert "suspend_flow" in inspect.getsource(faust_kafka.Consumer.stop_flow)


async def test_the_app_builds_our_transport_and_consumer() -> None:
    app = _app()
    assert list(inspect.signature(faust.App._new_transport).parameters) == ["self"]
    assert isinstance(app.transport, Transport)
    consumer = _consumer(app)
    assert isinstance(consumer, DeliveringConsumer)
    assert not consumer.suspend_flow.is_set()
    service = mode.Service()
    assert app._prepare_subservice(service) is service


def _message(offset: int) -> Message:
    return Message(
        "internals",
        0,
        offset,
        timestamp=0.0,
        timestamp_type=0,
        headers=[],
        key=b"k",
        value=b"v",
        checksum=None,
        tp=TP("internals", 0),
    )


class _Event:
    """What `take_events` yields, as far as the ack helpers use it."""

    def __init__(self, message: Message, consumer: Any) -> None:
        self.message = message
        self.consumer = consumer
        self.acks = 0

    def ack(self) -> bool:
        self.acks += 1
        return bool(self.consumer.ack(self.message))


async def test_a_withheld_ack_is_a_no_op_for_faust_until_released() -> None:
    app = _app()
    consumer = _consumer(app)
    app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
    consumer._committed_offset[TP("internals", 0)] = None
    events = [_Event(_message(offset), consumer) for offset in (5, 6)]
    withhold_acks(events)
    assert all(consumer.ack(event.message) is False for event in events)  # Faust's own ack: skipped
    assert consumer._n_acked == 0
    release_acks(events)
    assert all(event.message.acked and event.acks == 1 for event in events)
    assert consumer._n_acked == 2
    assert sorted(consumer._acked[TP("internals", 0)]) == [5, 6]


async def test_the_quiet_monitor_overrides_the_hooks_faust_calls_per_message() -> None:
    for hook in ("on_message_in", "on_stream_event_in", "on_stream_event_out", "on_message_out"):
        ours, faust_s = getattr(QuietMonitor, hook), getattr(Monitor, hook)
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(faust_s).parameters), hook
    assert isinstance(_app().monitor, QuietMonitor)


def test_the_worker_command_options_and_output_are_what_we_change() -> None:
    assert "--with-web/--without-web" in inspect.getsource(faust.cli.worker)
    assert "--quiet/--no-quiet" in inspect.getsource(faust.cli.base)
    assert "self.spinner = " in inspect.getsource(faust.Worker.__init__)
    assert "redirect_stdouts" in inspect.signature(mode.Worker.__init__).parameters
    assert real_stderr() is (sys.__stderr__ or sys.stderr)
    assert worker_argv(["prog", "worker"], json_logs=True) == ["prog", "--quiet", "worker", "--without-web"]
    assert worker_argv(["prog", "worker", "--with-web"], json_logs=False) == ["prog", "worker", "--with-web"]
    assert worker_argv(["prog", "--help"], json_logs=True) == ["prog", "--help"]
    assert asks_for_help([]) and asks_for_help(["-h"]) and asks_for_help(["worker", "--help"])
    assert not asks_for_help(["worker", "-h", "127.0.0.1"])  # the worker's --web-host
    assert help_argv(["prog"]) == ["prog", "--help"] == help_argv(["prog", "-h"])
    assert help_argv(["prog", "worker", "--help"]) == ["prog", "worker", "--help"]
    assert re.search(r'"--web-host",\s*"-h"', inspect.getsource(faust.cli.worker))
