"""The local stack launcher (scripts/stack) reports, and really runs, Kafka and PostgreSQL on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

STACK = Path(__file__).resolve().parent.parent / "scripts" / "stack"


def _run_stack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STACK), *args], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture(scope="module")
def stack_status() -> dict[str, dict[str, Any]]:
    """`scripts/stack status --json`, when the tests use the launcher's servers."""
    report: dict[str, dict[str, Any]] = json.loads(_run_stack("status", "--json").stdout)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap and bootstrap != report["kafka"]["address"]:
        pytest.skip(f"the tests use Kafka at {bootstrap}, not the local stack's")
    return report


def test_status_reports_kafka_running_on_loopback(stack_status: dict[str, dict[str, Any]]) -> None:
    kafka = stack_status["kafka"]
    assert kafka["state"] == "running"
    assert kafka["address"].startswith("127.0.0.1:")
    assert isinstance(kafka["pid"], int)
    assert Path(f"/proc/{kafka['pid']}").exists()


def test_status_reports_postgresql_running_on_loopback(stack_status: dict[str, dict[str, Any]]) -> None:
    postgresql = stack_status["postgresql"]
    assert postgresql["state"] in ("running", "external")
    assert postgresql["address"].startswith("127.0.0.1:")


def test_status_exits_zero_when_everything_runs(stack_status: dict[str, dict[str, Any]]) -> None:
    result = _run_stack("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka" in result.stdout
    assert "postgresql" in result.stdout


def test_env_points_at_the_reported_servers(stack_status: dict[str, dict[str, Any]]) -> None:
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in _run_stack("env").stdout.splitlines()
    )
    assert exports["KAFKA_BOOTSTRAP_SERVERS"] == stack_status["kafka"]["address"]
    assert f"@{stack_status['postgresql']['address']}/" in exports["DATABASE_URL"]


async def test_reported_kafka_serves_a_client(stack_status: dict[str, dict[str, Any]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_status["kafka"]["address"])
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers = {f"{broker['host']}:{broker['port']}" for broker in cluster["brokers"]}
    assert brokers == {stack_status["kafka"]["address"]}


async def test_reported_postgresql_accepts_the_application_role(
    stack_status: dict[str, dict[str, Any]],
) -> None:
    host, port = stack_status["postgresql"]["address"].split(":")
    user, password = os.environ.get("STACK_TEST_ROLE", "backup:backup").split(":", 1)
    connection = await asyncio.wait_for(
        asyncpg.connect(host=host, port=int(port), user=user, password=password, database="backup_test"),
        timeout=10,
    )
    try:
        assert await connection.fetchval("SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user")
    finally:
        await connection.close()
