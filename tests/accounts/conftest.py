"""Fixtures of the accounts tests: an admin account, and a real API server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from agora.accounts import service
from agora.core.db import Database
from agora.core.security import Role
from tests.accounts.flows import bearer, tokens
from tests.support import ROOT, free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "an admin passphrase"


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient, database: Database) -> dict[str, str]:
    """The Authorization header of a freshly created admin."""
    async with database.unit_of_work() as session:
        await service.register(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role=Role.ADMIN)
    return bearer((await tokens(client, ADMIN_EMAIL, ADMIN_PASSWORD))["access_token"])


@pytest.fixture
def api_server(service_env: dict[str, str]) -> Iterator[str]:
    """A real ``agora api`` (two worker processes) on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agora", "api", "--port", str(port), "--workers", "2"],
        env=service_env,
        cwd=ROOT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the API server exited"
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API server did not start")
