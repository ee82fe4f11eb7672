"""Child processes of `allegro-backup up`: started with their logs in files, stopped in order, none left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class Child:
    """One running service process."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


@dataclass
class ProcessGroup:
    """Starts service processes and stops them all, newest first, on exit."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, module_args: list[str], env: dict[str, str]) -> Child:
        """Run `python -m <module_args>` with its output in `<log_dir>/<name>.log`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        # A session of its own: Ctrl-C reaches only us, and we stop the children in a chosen order.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, "-m", *module_args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        child = Child(name, process, log_path, log_file)
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        """Children that exited on their own."""
        return [c for c in self.children if c.process.poll() is not None]

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (newest first), wait, then SIGKILL what is left."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while child.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            child.log_file.close()
        self.children.clear()


def wait_for_port(host: str, port: int, timeout: float, child: Child | None = None) -> None:
    """Block until something accepts connections on host:port, or raise with the child's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early; its log:\n{tail(child.log_path)}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
