"""Helpers shared by tests: a query counter, a real worker process, polling."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class QueryCounter:
    """Counts the SQL statements an app sends while it is active."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many statements were sent."""
        return len(self.statements)

    def reset(self) -> None:
        """Forget what was counted so far."""
        self.statements.clear()


@dataclass
class WorkerProcess:
    """A real ``agora worker`` process, which tests may kill and restart."""

    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker and wait until it consumes tasks."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora", "worker", "--concurrency", "2"],
            env=self.env,
            cwd=ROOT,
        )
        check = subprocess.run(
            [sys.executable, "-m", "agora", "check-worker", "--timeout", "60"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr.decode()

    def kill(self) -> None:
        """SIGKILL the worker's main process and its pool, as a crash would."""
        assert self.process is not None
        subprocess.run(["pkill", "-KILL", "-P", str(self.process.pid)], check=False)
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """Stop the worker cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


async def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
