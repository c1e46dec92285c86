"""``agora user create``: the way to make the first admin and members of staff."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
from sqlalchemy import func, select

from agora.accounts.models import User
from agora.core.db import Database
from tests.accounts.flows import API, bearer, tokens
from tests.support import ROOT


def _create(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agora", "user", "create", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_a_staff_account_made_on_the_command_line_can_log_in(
    client: httpx.AsyncClient, service_env: dict[str, str]
) -> None:
    created = _create(
        service_env, "Op@Example.com", "--password", "operator passphrase", "--role", "staff"
    )
    assert created.returncode == 0, created.stderr
    user_id = uuid.UUID(created.stdout.strip())

    issued = await tokens(client, "op@example.com", "operator passphrase")
    me = await client.get(f"{API}/users/{user_id}", headers=bearer(issued["access_token"]))
    assert me.status_code == 200
    assert me.json()["role"] == "staff"

    again = _create(service_env, "op@example.com", "--password", "another passphrase")
    assert again.returncode == 1
    assert "already exists" in again.stderr


async def test_bad_input_on_the_command_line_changes_nothing(
    service_env: dict[str, str], database: Database
) -> None:
    assert _create(service_env, "not-an-email", "--password", "long enough pass").returncode == 2
    weak = _create(service_env, "a@example.com", "--password", "short")
    assert weak.returncode == 2
    assert "password" in weak.stderr
    unknown_role = _create(
        service_env, "a@example.com", "--password", "long enough", "--role", "god"
    )
    assert unknown_role.returncode == 2
    async with database.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
