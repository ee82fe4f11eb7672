"""Every process answers `--help` on a bare machine: no environment, no Kafka, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.__main__ import build_parser

REPO = Path(__file__).resolve().parents[2]


def _help(*argv: str) -> subprocess.CompletedProcess[str]:
    # Production environment (development secrets refused) and a broker that cannot answer: help must
    # need neither.
    env = {key: value for key, value in os.environ.items() if key != "ENVIRONMENT"}
    env.update(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", ENVIRONMENT="production")
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("argv", [("--help",), ("-h",), ()])
def test_processors_help_lists_the_worker_command(argv: tuple[str, ...]) -> None:
    result = _help("processors", *argv)
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:", 1)[1]
    assert any(line.split()[:1] == ["worker"] for line in commands.splitlines())


def test_processors_worker_help_describes_the_worker() -> None:
    result = _help("processors", "worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m processors worker" in result.stdout


def test_api_help_needs_no_environment() -> None:
    result = _help("api", "--help")
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout


def test_every_simulator_option_has_a_description() -> None:
    undescribed = [
        action.option_strings for action in build_parser()._actions if not (action.help or "").strip()
    ]
    assert undescribed == []
