"""``agora logs ship``: a real API server, a file that grows, rotates and is truncated."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from agora.core.db import Database
from agora.logs.models import log_lines
from agora.logs.shipper import Shipper, load_position
from agora.settings import Settings
from tests.logs.support import load_all, nginx_line, staff_headers
from tests.support import ROOT, ApiProcess, wait_for


@pytest.fixture(scope="module")
def server(service_env: dict[str, str]) -> Iterator[ApiProcess]:
    process = ApiProcess(env=service_env)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def key(server: ApiProcess, settings: Settings) -> str:
    answer = httpx.post(
        f"{server.base_url}/api/v1/logs/keys", json={"name": "ship"},
        headers=staff_headers(settings),
    )  # fmt: skip
    assert answer.status_code == 201
    return str(answer.json()["key"])


def append(path: Path, tag: str, count: int) -> None:
    with path.open("a") as file:
        for n in range(count):
            file.write(nginx_line(f"/{tag}/{n}", 200) + "\n")


async def run_cli(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, check=False
    )


async def stored(database: Database, redis: Redis, tag: str) -> int:
    await load_all(database, redis)
    async with database.engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(log_lines).where(log_lines.c.path.like(f"/{tag}/%"))
        )
    return int(count or 0)


async def test_the_command_ships_a_file_and_remembers_its_offset(
    server: ApiProcess, key: str, tmp_path: Path, database: Database, redis: Redis,
    service_env: dict[str, str],
) -> None:  # fmt: skip
    log = tmp_path / "access.log"
    append(log, "a", 2500)
    with log.open("a") as file:
        file.write("a broken line\n")
    state = tmp_path / "state.json"
    command = [
        sys.executable, "-m", "agora", "logs", "ship", str(log), "--url", server.base_url,
        "--key", key, "--state", str(state),
    ]  # fmt: skip
    done = await run_cli(command, service_env)
    assert done.returncode == 0, done.stderr.decode()
    assert "shipped 2500 lines, 1 rejected" in done.stderr.decode()
    assert await stored(database, redis, "a") == 2500
    assert load_position(state).offset == log.stat().st_size
    again = await run_cli(command, service_env)
    assert "shipped 0 lines" in again.stderr.decode()  # nothing sent twice


async def test_following_survives_rotation_and_truncation(
    server: ApiProcess, key: str, tmp_path: Path, database: Database, redis: Redis
) -> None:
    log = tmp_path / "access.log"
    append(log, "before", 10)
    shipper = Shipper(log, tmp_path / "state.json", server.base_url, key, "nginx")
    stopping = threading.Event()
    thread = threading.Thread(target=lambda: shipper.run(follow=True, stop=stopping.is_set))
    thread.start()
    try:
        await wait_for(lambda: _count(database, redis, "before", 10), timeout=30)
        append(log, "rotated", 5)  # written to the old file just before it is rotated
        log.rename(tmp_path / "access.log.1")
        append(log, "fresh", 7)
        await wait_for(lambda: _count(database, redis, "rotated", 5), timeout=30)
        await wait_for(lambda: _count(database, redis, "fresh", 7), timeout=30)
        log.write_text("")  # copytruncate
        await asyncio.sleep(1)
        append(log, "truncated", 3)
        await wait_for(lambda: _count(database, redis, "truncated", 3), timeout=30)
    finally:
        stopping.set()
        thread.join(timeout=10)
    assert await stored(database, redis, "fresh") == 7  # nothing re-sent


async def _count(database: Database, redis: Redis, tag: str, expected: int) -> bool:
    return await stored(database, redis, tag) == expected


async def test_a_refused_key_stops_the_shipper(
    server: ApiProcess, tmp_path: Path, service_env: dict[str, str]
) -> None:
    log = tmp_path / "access.log"
    append(log, "x", 1)
    command = [
        sys.executable, "-m", "agora", "logs", "ship", str(log), "--url", server.base_url,
        "--key", "agl_not-a-key", "--state", str(tmp_path / "s.json"),
    ]  # fmt: skip
    done = await run_cli(command, service_env)
    assert done.returncode == 1
    assert "401" in done.stderr.decode()
