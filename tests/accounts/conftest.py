"""Fixtures of the accounts tests: an admin account."""

from __future__ import annotations

import httpx
import pytest

from agora.accounts import service
from agora.core.db import Database
from agora.core.security import Role
from tests.accounts.flows import bearer, tokens

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "an admin passphrase"


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient, database: Database) -> dict[str, str]:
    """The Authorization header of a freshly created admin."""
    async with database.unit_of_work() as session:
        await service.register(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role=Role.ADMIN)
    return bearer((await tokens(client, ADMIN_EMAIL, ADMIN_PASSWORD))["access_token"])
