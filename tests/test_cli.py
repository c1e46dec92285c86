"""The command line: ``agora up`` runs everything and stops cleanly; services and users."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support import ROOT, free_port


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGORA_")}
    env.update(AGORA_DATA_DIR=str(data_dir), AGORA_LOG_LEVEL="WARNING")
    return env


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "agora up exited early"
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError("agora up did not become ready")


def run_up_until_ready(data_dir: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    """Start ``agora up``; return it and every process it runs once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agora", "up", "--port", str(port)],
        env=clean_env(data_dir),
        cwd=ROOT,
    )
    base_url = f"http://127.0.0.1:{port}"
    wait_ready(base_url, process)
    assert httpx.get(f"{base_url}/docs").status_code == 200
    tree = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    tree |= embedded_server_pids(data_dir)
    return process, tree


def embedded_server_pids(data_dir: Path) -> set[int]:
    pids = set()
    for pidfile in (data_dir / "postgres" / "postmaster.pid", data_dir / "redis" / "redis.pid"):
        pids.add(int(pidfile.read_text().split()[0]))
    return pids


def alive(pids: set[int]) -> set[int]:
    return {
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    }


def stop(process: subprocess.Popen[bytes], tree: set[int]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    deadline = time.monotonic() + 10
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(tree) == set(), "processes left behind"


def test_up_serves_then_stops_everything_and_reuses_its_data(tmp_path: Path) -> None:
    process, tree = run_up_until_ready(tmp_path)
    assert len(tree) >= 5  # api, worker (+ pool), beat, PostgreSQL, Redis
    stop(process, tree)
    assert process.returncode == 0

    pg_version_file = tmp_path / "postgres" / "PG_VERSION"
    created = pg_version_file.stat().st_mtime
    process, tree = run_up_until_ready(tmp_path)
    stop(process, tree)
    assert pg_version_file.stat().st_mtime == created


def test_services_start_status_stop(tmp_path: Path) -> None:
    def agora(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agora", *args],
            env=clean_env(tmp_path),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    started = agora("services", "start")
    assert started.returncode == 0, started.stderr
    assert "AGORA_DATABASE_URL=postgresql+asyncpg://" in started.stdout
    status = agora("services", "status")
    assert status.returncode == 0
    assert status.stdout == started.stdout
    assert agora("services", "stop").returncode == 0
    stopped = agora("services", "status")
    assert stopped.returncode == 1
    assert "(stopped)" in stopped.stdout


def test_a_configuration_error_is_one_line_per_problem_and_exit_status_2(tmp_path: Path) -> None:
    env = {**clean_env(tmp_path), "AGORA_ENV": "production", "AGORA_SECRET_KEY": "short"}
    result = subprocess.run(
        [sys.executable, "-m", "agora", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "configuration error: AGORA_SECRET_KEY: must be at least 32 characters in production",
        "configuration error: AGORA_PAYMENT_PROVIDERS: "
        "the dev payment provider cannot be enabled in production",
    ]
    assert list(tmp_path.iterdir()) == []  # refused before any service was started
