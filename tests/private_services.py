"""A PostgreSQL and a Kafka node of a test's own, on free ports, started and stopped through scripts/stack's
per-service verbs (`start postgres`, `stop kafka`), for outages that must not touch the shared servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from db.migrate import upgrade
from tests.environments import free_port

STACK = Path(__file__).resolve().parents[1] / "scripts" / "stack"


class PrivateService:
    """One service of a stack directory of its own; `start()` / `stop()` run the launcher for it only."""

    def __init__(self, workdir: Path, service: str) -> None:
        self.service = service
        self.port = free_port()
        # Not under `workdir`: pytest's temporary folders are closed to other users, and the launcher,
        # running PostgreSQL as `postgres`, would put the cluster elsewhere and leave it there. A folder
        # everybody may enter keeps the cluster inside, and `remove()` deletes it.
        self.stack_dir = Path(tempfile.mkdtemp(prefix=f"allegro-backup-{service}-"))
        self.stack_dir.chmod(0o755)
        self.env = {
            **os.environ,
            "STACK_DIR": str(self.stack_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "PG_PORT": str(self.port),
            "DATABASE_URL": f"postgresql+asyncpg://backup:backup@127.0.0.1:{self.port}/backup",
        }

    @property
    def database_url(self) -> str:
        """The application database's URL (the launcher creates role `backup` and the database)."""
        return self.env["DATABASE_URL"]

    @property
    def bootstrap(self) -> str:
        """Where Kafka clients connect."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it answers (the launcher waits)."""
        self._run("start")

    def stop(self) -> None:
        """Stop it cleanly (PostgreSQL: fast shutdown, which closes every connection)."""
        self._run("stop")

    def remove(self) -> None:
        """Stop it and delete its state."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.stack_dir, ignore_errors=True)

    def _run(self, verb: str) -> None:
        subprocess.run(
            [str(STACK), verb, self.service], env=self.env, check=True, capture_output=True, timeout=120
        )


@contextmanager
def migrated_postgres(workdir: Path) -> Iterator[PrivateService]:
    """A private PostgreSQL, started and migrated to head; stopped and deleted afterwards."""
    service = PrivateService(workdir, "postgres")
    try:
        service.start()
        upgrade(service.database_url, "head")
        yield service
    finally:
        service.remove()
