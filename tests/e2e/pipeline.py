"""The whole service as separate OS processes on per-test topics: simulator, processor, poller, API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from cli.processes import ProcessGroup, tail, wait_for_port
from core.settings import KafkaSettings
from tests.environments import free_port, service_env

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


def start_pipeline(kafka: KafkaSettings, database_url: str, workdir: Path) -> Pipeline:
    """Start the simulator, processor, poller and API; return once the simulator and API answer."""
    sim_port, api_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = service_env(kafka, database_url, sim_url, api_port, workdir)
    env["API__KEYS"] = API_KEY
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


def token_checksum(database_url: str, token_id: str) -> str:
    """`db.queries.replay.token_checksum` of one token, from synchronous test code."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.queries import replay

    async def run() -> str:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await replay.token_checksum(connection, uuid.UUID(token_id))
        finally:
            await engine.dispose()

    return asyncio.run(run())
