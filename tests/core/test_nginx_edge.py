"""deploy/nginx.conf run for real in front of a real API: the client's address reaches the API
whatever ``X-Forwarded-For`` the client sends, and tokens in URLs never reach nginx's log.

The configuration is the shipped file with only what ties it to Compose replaced (the upstream's
address, Docker's resolver, the listening port, the log and pid paths), as ``agora stack``
renders it. Needs nginx (``deploy/install-tools.sh``); reported as skipped without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from agora.stack.plan import StackPlan
from tests.accounts.flows import API
from tests.deploy.support import DEPLOY
from tests.support import ApiProcess, free_port

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


@contextlib.contextmanager
def _nginx(api_port: int, folder: Path) -> Iterator[tuple[int, Path]]:
    """nginx with the deploy configuration (rendered as ``agora stack`` renders it) on a free
    port, in front of ``api_port``; yields the port and the access log."""
    assert NGINX is not None
    folder.chmod(0o777)  # nginx's workers drop root and write their temporary files here
    plan = StackPlan(DEPLOY, folder, proxy_port=free_port(), api_ports=(api_port,))
    plan.write_configs()
    config = plan.nginx_config
    command = [NGINX, "-p", str(config.parent), "-c", str(config), "-e", "stderr"]
    process = subprocess.Popen([*command, "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "nginx exited"
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", plan.proxy_port)),
            ):
                break
            assert time.monotonic() < deadline, "nginx did not listen within 20s"
            time.sleep(0.05)
        yield plan.proxy_port, config.parent / "logs" / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=20)


async def _bad_logins(port: int, source: str, count: int) -> list[int]:
    """``count`` failed logins through nginx from the local address ``source``, each naming a
    new address of its own in ``X-Forwarded-For``."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    statuses = []
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://127.0.0.1:{port}", timeout=30
    ) as http:
        for attempt in range(count):
            response = await http.post(
                f"{API}/auth/token",
                data={"username": "victim@example.com", "password": "a guess"},
                headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
            )
            statuses.append(response.status_code)
    return statuses


async def test_nginx_names_the_real_client_and_redacts_tokens_from_its_log(
    api_server: Callable[..., ApiProcess], tmp_path: Path
) -> None:
    server = await asyncio.to_thread(
        api_server, AGORA_TRUSTED_PROXIES="127.0.0.1", AGORA_RATE_LIMIT_LOGIN="3/minute"
    )
    with _nginx(server.port, tmp_path) as (port, access_log):
        spoofing = await _bad_logins(port, "127.0.0.2", 5)
        elsewhere = await _bad_logins(port, "127.0.0.3", 1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answer = await http.get(
                f"{API}/products?token=first-secret&limit=1&access_token=second-secret"
            )
            assert answer.status_code == 200
    log = access_log.read_text()

    # nginx replaced the client's header with its address; the API believed nginx.
    assert spoofing == [401, 401, 401, 429, 429]
    assert elsewhere == [401]
    assert "first-secret" not in log
    assert "second-secret" not in log
    lines = [json.loads(line) for line in log.splitlines()]
    assert {line["remote_addr"] for line in lines} >= {"127.0.0.2", "127.0.0.3"}
    assert f"{API}/products?token=[redacted]&limit=1&access_token=[redacted]" in {
        line["uri"] for line in lines
    }
