"""CLI commands that talk to Kafka or PostgreSQL directly say in one line that they do not answer."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.environments import free_port


def test_quiet_and_migrate_with_nothing_listening_print_one_line_and_exit_1() -> None:
    closed = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"postgresql+asyncpg://backup:backup@127.0.0.1:{closed}/backup",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
    }
    for command in (["quiet"], ["migrate"]):
        done = subprocess.run(
            [sys.executable, "-m", "cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) <= 2 and "failed:" in lines[0], done.stderr
