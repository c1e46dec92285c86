"""The production shape, started once for the scale suite: ``agora stack up`` on the machine's
PostgreSQL, Redis and RabbitMQ, two API processes and two workers behind a real nginx, and a real
Prometheus scraping them. Runs only when ``AGORA_TEST_SCALE=1`` (``.ci/run`` sets it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from redis.asyncio import Redis

from agora.core.db import Database
from agora.settings import Settings
from tests.support import ROOT

POSTGRES_SERVER = os.environ.get(
    "AGORA_TEST_SCALE_POSTGRES", "postgresql://postgres@127.0.0.1:5432"
)
REDIS_URL = os.environ.get("AGORA_TEST_SCALE_REDIS", "redis://127.0.0.1:6379/3")
BROKER_URL = os.environ.get("AGORA_TEST_SCALE_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
DATABASE = "agora_scale_test"
SECRET_KEY = "scale-suite-secret-key-of-at-least-thirty-two-characters"
PAYMENT_TIMEOUT_S = 20
_START_TIMEOUT_S = 180.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a scale test, skipped unless the suite is asked for."""
    for item in items:
        if "tests/scale/" in str(item.fspath):
            item.add_marker(pytest.mark.scale)
            if os.environ.get("AGORA_TEST_SCALE") != "1":
                item.add_marker(
                    pytest.mark.skip(
                        reason="set AGORA_TEST_SCALE=1 to run the scale suite (needs nginx, "
                        "prometheus and PostgreSQL, Redis, RabbitMQ on 127.0.0.1)"
                    )
                )


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Replaces the suite's per-test cleanup: the stack keeps its own data for the whole run."""


@dataclass
class Stack:
    """A running stack: where nginx, each API process and Prometheus answer."""

    base_url: str
    api_urls: list[str]
    prometheus_url: str
    run_dir: Path
    settings: Settings
    database: Database
    redis: Redis

    def pid(self, name: str) -> int:
        """The pid of one supervised program (``api-1``, ``worker-2`` …)."""
        state = json.loads((self.run_dir / "stack.json").read_text())
        return int(state["groups"][name])

    def access_log(self) -> list[dict[str, object]]:
        """nginx's JSON access log lines so far."""
        lines = (self.run_dir / "nginx" / "logs" / "access.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def _free_port_pair() -> int:
    """A port p such that p and p + 1 are both free."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        with contextlib.suppress(OSError), socket.socket() as second:
            second.bind(("127.0.0.1", port + 1))
            return port
    raise AssertionError("no two consecutive free ports")


async def _fresh_database() -> str:
    connection = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await connection.close()
    return f"{POSTGRES_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{DATABASE}"


def _wait_until_up(stack: Stack, process: subprocess.Popen[bytes]) -> None:
    urls = [f"{stack.base_url}/readyz", *(f"{url}/healthz" for url in stack.api_urls)]
    urls.append(f"{stack.prometheus_url}/-/ready")
    deadline = time.monotonic() + _START_TIMEOUT_S
    pending = list(urls)
    while pending:
        assert process.poll() is None, "agora stack up exited"
        assert time.monotonic() < deadline, f"not up in time: {pending}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(pending[0], timeout=2).status_code == 200:
                pending.pop(0)
                continue
        time.sleep(0.3)


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The stack, up for the whole scale suite, and stopped with nothing left behind."""
    run_root = tmp_path_factory.mktemp("stack")
    database_url = await _fresh_database()
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    proxy_port, api_port, metrics_port, prometheus_port = (
        _free_port_pair(),
        _free_port_pair(),
        _free_port_pair(),
        _free_port_pair(),
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGORA_")}
    env.update(
        AGORA_ENV="test",
        AGORA_SECRET_KEY=SECRET_KEY,
        AGORA_DATA_DIR=str(run_root),
        AGORA_DATABASE_URL=database_url,
        AGORA_REDIS_URL=REDIS_URL,
        AGORA_BROKER_URL=BROKER_URL,
        AGORA_TASK_QUEUE="agora-scale-test",
        AGORA_PROXY_PORT=str(proxy_port),
        AGORA_LOG_LEVEL="WARNING",
        AGORA_RATE_LIMIT_DEFAULT="1000000/minute",
        AGORA_RATE_LIMIT_FLASH_SALE_IP="1000000/second",
        AGORA_RATE_LIMIT_LOGIN_IP="10/minute",  # failed logins per address, across accounts
        AGORA_ORDER_PAYMENT_TIMEOUT=str(PAYMENT_TIMEOUT_S),
        AGORA_ORDER_EXPIRY_SWEEP_INTERVAL="2",
    )
    run_dir = run_root / "stack"
    log = (run_root / "stack.log").open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited on below
        [
            sys.executable,
            "-m",
            "agora",
            "stack",
            "up",
            "--no-demo",
            "--api-base-port",
            str(api_port),
            "--worker-metrics-port",
            str(metrics_port),
            "--prometheus-port",
            str(prometheus_port),
            "--run-dir",
            str(run_dir),
            "--deploy-dir",
            str(ROOT / "deploy"),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    settings = Settings(
        env="test",
        secret_key=SECRET_KEY,
        database_url=database_url,
        redis_url=REDIS_URL,
        _env_file=None,  # type: ignore[call-arg]
    )
    database = Database(database_url, pool_size=10)
    stack = Stack(
        base_url=f"http://127.0.0.1:{proxy_port}",
        api_urls=[f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{api_port + 1}"],
        prometheus_url=f"http://127.0.0.1:{prometheus_port}",
        run_dir=run_dir,
        settings=settings,
        database=database,
        redis=redis,
    )
    try:
        await asyncio.to_thread(_wait_until_up, stack, process)
        yield stack
    finally:
        groups = json.loads((run_dir / "stack.json").read_text())["groups"]
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        log.close()
        await database.dispose()
        await redis.aclose()
    leftovers = [p.pid for p in psutil.process_iter() if _in_groups(p, set(groups.values()))]
    assert leftovers == [], f"processes left behind: {leftovers}"


def _in_groups(process: psutil.Process, groups: set[int]) -> bool:
    with contextlib.suppress(psutil.Error):
        return os.getpgid(process.pid) in groups
    return False
