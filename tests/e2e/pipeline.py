"""The whole service as separate OS processes on per-test topics: simulator, processor, poller, API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from cli.processes import ProcessGroup, free_port, tail, wait_for_port
from core.settings import KafkaSettings

API_KEY = "e2e-api-key"
T = TypeVar("T")


@dataclass
class Pipeline:
    """Handles on a running pipeline."""

    group: ProcessGroup
    env: dict[str, str]
    simulator: httpx.Client
    api: httpx.Client

    def logs(self) -> str:
        """Every child's log tail, for assertion messages."""
        return "\n".join(f"--- {c.name}\n{tail(c.log_path, 30)}" for c in self.group.children)

    def stop(self) -> None:
        """Stop every process and close the clients."""
        self.simulator.close()
        self.api.close()
        self.group.stop_all()


def service_env(
    kafka: KafkaSettings, database_url: str, sim_url: str, api_port: int, data_dir: Path
) -> dict[str, str]:
    """Environment that points every process at this test's topics, database and simulator."""
    return {
        "DATABASE__URL": database_url,
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA__SNAPSHOTS_TOPIC": kafka.snapshots_topic,
        "KAFKA__SYNC_RUNS_TOPIC": kafka.sync_runs_topic,
        "KAFKA__ORDERS_TOPIC": kafka.orders_topic,
        "KAFKA__REVISIONS_TOPIC": kafka.revisions_topic,
        "KAFKA__DLQ_TOPIC": kafka.dlq_topic,
        "KAFKA__TOKENS_TOPIC": kafka.tokens_topic,
        "KAFKA__CLIENT_ID": f"e2e-{uuid.uuid4().hex[:8]}",
        "KAFKA__PARTITIONS": str(kafka.partitions),
        "ALLEGRO__AUTH_URL": sim_url,
        "ALLEGRO__API_URL": sim_url,
        "API__KEYS": API_KEY,
        "API__PORT": str(api_port),
        "POLLER__JOURNAL_INTERVAL_SECONDS": "0.5",
        "POLLER__LINK_POLL_SECONDS": "0.2",
        "POLLER__RECONCILE_INTERVAL_SECONDS": "5",
        "POLLER__RECONCILE_OVERLAP_SECONDS": "600",
        "PROCESSOR__APP_ID": f"e2e-{uuid.uuid4().hex[:8]}",
        "PROCESSOR__DATA_DIR": str(data_dir / "faust"),
        "PROCESSOR__WEB_PORT": str(free_port()),
        "PROCESSOR__BATCH_WITHIN_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }


def start_pipeline(kafka: KafkaSettings, database_url: str, workdir: Path) -> Pipeline:
    """Start the simulator, processor, poller and API; return once the simulator and API answer."""
    sim_port, api_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = service_env(kafka, database_url, sim_url, api_port, workdir)
    group = ProcessGroup(workdir / "logs")
    simulator = group.start(
        "simulator",
        [
            "simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(sim_port),
            "--seed",
            "7",
            "--device-interval",
            "0",
        ],
        env,
    )
    wait_for_port("127.0.0.1", sim_port, 30, simulator)
    group.start("processor", ["processors", "worker"], env)
    group.start("poller", ["producers"], env)
    api = group.start("api", ["api"], env)
    wait_for_port("127.0.0.1", api_port, 60, api)
    return Pipeline(
        group=group,
        env=env,
        simulator=httpx.Client(base_url=sim_url, timeout=60),
        api=httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        ),
    )


def eventually(check: Callable[[], T | None], timeout: float, what: str, pipeline: Pipeline) -> T:
    """Poll `check` until it returns a truthy value; fail with the processes' logs otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        dead = pipeline.group.dead()
        if dead:
            raise AssertionError(f"{[c.name for c in dead]} died while waiting for {what}\n{pipeline.logs()}")
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})\n{pipeline.logs()}"
    )
