"""Account rules below the HTTP layer."""

from __future__ import annotations

import datetime as dt
import uuid

from argon2 import PasswordHasher
from sqlalchemy import select

from agora.accounts import service
from agora.accounts.models import RefreshToken, User
from agora.core.db import Database, utcnow
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


async def test_purge_forgets_only_refresh_tokens_long_expired(database: Database) -> None:
    user = User(id=uuid.uuid4(), email="purge@example.com", password_hash="-")
    now = utcnow()
    ages = {"long-expired": dt.timedelta(days=8), "just-expired": dt.timedelta(days=6)}
    async with database.unit_of_work() as session:
        session.add(user)
        await session.flush()
        for digest, age in {**ages, "live": -dt.timedelta(days=1)}.items():
            session.add(
                RefreshToken(
                    user_id=user.id,
                    family_id=uuid.uuid4(),
                    token_digest=digest,
                    expires_at=now - age,
                )
            )
    async with database.unit_of_work() as session:
        assert await service.purge_expired_refresh_tokens(session) == 1
        assert await service.purge_expired_refresh_tokens(session) == 0
    async with database.unit_of_work() as session:
        kept = set(await session.scalars(select(RefreshToken.token_digest)))
    assert kept == {"just-expired", "live"}
