"""Account rules below the HTTP layer."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import select

from agora.accounts import service
from agora.accounts.models import User
from agora.core.db import Database
from agora.settings import Settings


async def test_login_upgrades_a_hash_made_with_weaker_parameters(
    database: Database, settings: Settings
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("old passphrase")
    async with database.unit_of_work() as session:
        session.add(User(email="legacy@example.com", password_hash=weak))
    async with database.unit_of_work() as session:
        await service.login(session, settings, "Legacy@example.com", "old passphrase")
    async with database.unit_of_work() as session:
        stored = await session.scalar(select(User.password_hash))
    assert stored is not None
    assert stored != weak
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
