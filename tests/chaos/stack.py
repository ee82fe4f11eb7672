"""A Kafka node and a PostgreSQL cluster of the chaos test's own, through `scripts/stack`, so the test can
stop and restart them without touching the servers the rest of the suite uses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from cli.processes import free_port

STACK = Path(__file__).resolve().parents[2] / "scripts" / "stack"


class PrivateStack:
    """`scripts/stack` with a state folder and ports of its own."""

    def __init__(self, workdir: Path) -> None:
        self.kafka_port = free_port()
        self.pg_port = free_port()
        self.database_url = f"postgresql+asyncpg://backup:backup@127.0.0.1:{self.pg_port}/backup"
        self.env = {
            **os.environ,
            "STACK_DIR": str(workdir / "stack"),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "PG_PORT": str(self.pg_port),
            "DATABASE_URL": self.database_url,
        }

    @property
    def bootstrap(self) -> str:
        """Where Kafka clients connect."""
        return f"127.0.0.1:{self.kafka_port}"

    def run(self, *args: str) -> None:
        """`scripts/stack ARGS` for this stack only (e.g. `up`, `down`, `down postgresql`, `up kafka`)."""
        subprocess.run([str(STACK), *args], env=self.env, check=True, capture_output=True, timeout=180)

    def status(self) -> dict[str, dict[str, object]]:
        """`scripts/stack status --json` of this stack."""
        done = subprocess.run(
            [str(STACK), "status", "--json"], env=self.env, capture_output=True, text=True, timeout=60
        )
        report: dict[str, dict[str, object]] = json.loads(done.stdout)
        return report

    def destroy(self) -> None:
        """Stop both servers and remove their data, wherever the launcher put PostgreSQL's."""
        data_dir = self.status().get("postgresql", {}).get("data_dir")
        self.run("down")
        if isinstance(data_dir, str) and data_dir:
            shutil.rmtree(Path(data_dir).parent, ignore_errors=True)
