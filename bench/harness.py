"""Shared pieces of the benchmarks: their command line and services, tokens their servers accept,
start servers, drive a closed-loop load, print a table.

Every benchmark measures its baseline in the same run, on the same machine and server settings,
so the table compares like with like. The load generator is a closed loop: ``concurrency``
clients each send their next request as soon as the previous one answered. It uses aiohttp, whose
client costs far less per request than httpx's under concurrency, so the server is what is measured.
A request is a coroutine ``(session, sequence_number) -> HTTP status``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import make_url

from agora.core.embedded import ServiceUrls, resolve_service_urls
from agora.core.security import Role, issue_access_token
from agora.migrations import upgrade
from agora.settings import DEFAULT_SECRET_KEY, Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA_DIR = Path(os.environ.get("AGORA_BENCH_DATA_DIR", ROOT / ".agora" / "bench"))
UVICORN_FLAGS = [
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
]

Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


@dataclass
class LoadResult:
    """What one load run observed."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        """Requests answered, errors included."""
        return len(self.latencies) + self.errors

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """A latency percentile in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    @property
    def median(self) -> float:
        """The median latency in milliseconds."""
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def load_arguments(
    description: str | None, *, concurrency: int = 32, duration: float = 5.0
) -> argparse.ArgumentParser:
    """The command line of a closed-loop benchmark, ``--concurrency`` clients for ``--duration``
    seconds each; the benchmark adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--concurrency", type=int, default=concurrency)
    parser.add_argument("--duration", type=float, default=duration)
    return parser


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """``run_load``'s ``concurrency`` and ``duration``, as given on the command line."""
    return {"concurrency": args.concurrency, "duration": args.duration}


def bench_services() -> ServiceUrls:
    """Embedded PostgreSQL and Redis for benchmarks, apart from development and test data, the
    schema migrated to the current version."""
    urls = resolve_service_urls(BENCH_DATA_DIR, None, None, None, database="agora_bench")
    upgrade(urls.database_url)
    return urls


def asyncpg_dsn(urls: ServiceUrls) -> str:
    """The database's URL as asyncpg takes it (without SQLAlchemy's driver name)."""
    return asyncpg_url(urls.database_url)


def asyncpg_url(database_url: str) -> str:
    """A SQLAlchemy database URL as asyncpg takes it."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def access_token(role: Role, user_id: uuid.UUID | None = None) -> str:
    """An access token the benchmark servers accept: ``agora_env`` passes them no secret key, so
    they sign with the default one (whatever this process's environment says)."""
    settings = Settings(secret_key=SecretStr(DEFAULT_SECRET_KEY))
    return issue_access_token(settings, user_id or uuid.uuid4(), role)


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


def agora_env(urls: ServiceUrls, **extra: str) -> dict[str, str]:
    """Environment for an ``agora`` process on the benchmark services."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGORA_")}
    env.update(
        AGORA_ENV="test",
        AGORA_DATA_DIR=str(BENCH_DATA_DIR),
        AGORA_DATABASE_URL=urls.database_url,
        AGORA_REDIS_URL=urls.redis_url,
        AGORA_BROKER_URL=urls.broker_url,
        AGORA_LOG_LEVEL="WARNING",
        AGORA_RATE_LIMIT_DEFAULT="1000000/second",
        **extra,
    )
    return env


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """Run a server process until the block ends; yields its base URL once it answers."""
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def agora_server(
    env: dict[str, str], port: int, workers: int = 1
) -> contextlib.AbstractContextManager[str]:
    """Agora's API (``agora api``) on ``port``."""
    command = [sys.executable, "-m", "agora", "api", "--port", str(port), "--workers", str(workers)]
    return server(command, env, port)


def app_server(
    app: str, port: int, workers: int = 1, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[str]:
    """Any ASGI app factory (``module:function``) served as ``agora api`` serves Agora
    (``agora/serving.py``): the yardstick apps' server, so that a ratio compares apps, not
    servers. ``env`` as for ``uvicorn_server``."""
    call = f"serve({app!r}, host='127.0.0.1', port={port}, workers={workers})"
    command = [sys.executable, "-c", f"from agora.serving import serve; {call}"]
    return server(command, dict(os.environ) if env is None else env, port)


def uvicorn_server(
    app: str, port: int, workers: int = 1, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[str]:
    """Any ASGI app factory (``module:function``) under uvicorn with Agora's server settings, in
    ``env`` (this process's environment by default; ``agora_env`` for a factory built on Agora)."""
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port)]
    command += ["--workers", str(workers), *UVICORN_FLAGS]
    return server(command, dict(os.environ) if env is None else env, port)


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} did not answer within {timeout}s")


async def run_load(
    name: str,
    base_url: str,
    request: Request,
    *,
    concurrency: int = 32,
    duration: float = 5.0,
    warmup: float = 1.0,
    ok_statuses: frozenset[int] = frozenset({200, 201, 202, 204, 304}),
) -> LoadResult:
    """Drive ``request`` from ``concurrency`` clients for ``duration`` seconds after a warm-up."""
    result = LoadResult(name)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        await _drive(session, request, concurrency, warmup, LoadResult("warm-up"), ok_statuses)
        started = time.perf_counter()
        await _drive(session, request, concurrency, duration, result, ok_statuses)
        result.elapsed = time.perf_counter() - started
    return result


async def _drive(
    session: aiohttp.ClientSession,
    request: Request,
    concurrency: int,
    duration: float,
    result: LoadResult,
    ok_statuses: frozenset[int],
) -> None:
    deadline = time.perf_counter() + duration
    counter = iter(range(10**9))

    async def one_client() -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status = await request(session, next(counter))
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
                continue
            if status in ok_statuses:
                result.latencies.append(time.perf_counter() - sent)
            else:
                result.errors += 1

    await asyncio.gather(*(one_client() for _ in range(concurrency)))


def get(path: str, headers: dict[str, str] | None = None) -> Request:
    """A request that GETs ``path``."""

    async def send(session: aiohttp.ClientSession, _: int) -> int:
        async with session.get(path, headers=headers) as response:
            await response.read()
            return response.status

    return send


def print_table(title: str, results: list[LoadResult], baseline: LoadResult) -> None:
    """Print throughput and latency of each result, relative to the baseline's throughput."""
    table = Table(title=title)
    for column in ("scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs baseline"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for result in [baseline, *results]:
        ratio = result.throughput / baseline.throughput if baseline.throughput else float("nan")
        table.add_row(
            result.name,
            str(result.requests),
            str(result.errors),
            f"{result.throughput:,.0f}",
            f"{result.median:.2f}",
            f"{result.percentile(0.99):.2f}",
            "baseline" if result is baseline else f"{ratio:.2f}x",
        )
    Console(width=120).print(table)
