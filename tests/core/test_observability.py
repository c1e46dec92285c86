"""Logs carry the request id; metrics add up across several API processes."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import FastAPI

from agora.core.observability import configure_logging
from tests.support import ROOT, free_port


async def test_every_log_line_of_a_request_carries_its_request_id(
    app: FastAPI, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)

    @app.get("/noisy")
    async def noisy() -> dict[str, str]:
        structlog.get_logger("agora.test").info("inside_handler")
        logging.getLogger("agora.stdlib").warning("stdlib line")
        return {}

    await client.get("/noisy", headers={"X-Request-ID": "req-42"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    events = {line["event"]: line for line in lines}
    assert {"inside_handler", "stdlib line", "request"} <= events.keys()
    for name in ("inside_handler", "stdlib line", "request"):
        assert events[name]["request_id"] == "req-42"
    assert events["request"]["status"] == 200
    assert events["request"]["path"] == "/noisy"


def test_metrics_add_up_across_api_processes(service_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**service_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "agora", "api", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base_url}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        for _ in range(40):  # new connections, spread over both processes by the kernel
            with httpx.Client() as fresh:
                fresh.get(f"{base_url}/healthz")
        metrics = httpx.get(f"{base_url}/metrics").text
        pids = {path.name.split("_")[-1] for path in tmp_path.glob("counter_*.db")}
    finally:
        server.terminate()
        server.wait(timeout=30)
    match = re.search(
        r'agora_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)', metrics
    )
    assert match is not None
    assert float(match.group(1)) == 40
    assert len(pids) == 2


def test_worker_serves_its_task_metrics(service_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**service_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "agora", "worker", "--metrics-port", str(port)]
    worker = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        check = subprocess.run(
            [sys.executable, "-m", "agora", "check-worker", "--timeout", "60"],
            env=service_env,
            cwd=ROOT,
            check=False,
        )
        assert check.returncode == 0
        sample = 'agora_worker_tasks_total{state="SUCCESS",task="agora.ping"} 1.0'
        deadline = time.monotonic() + 30
        metrics = ""
        while sample not in metrics and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert sample in metrics
