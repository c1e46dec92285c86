"""Every query on the accounts tables: users and their refresh tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agora.accounts.models import RefreshToken, User
from agora.core.security import Role


@dataclass(frozen=True)
class SpentRefreshToken:
    """A refresh token just marked as used: whose it was and which session it belongs to."""

    user_id: uuid.UUID
    family_id: uuid.UUID


@dataclass(frozen=True)
class StoredRefreshToken:
    """A stored refresh token's owner and session, and whether it was used or revoked."""

    user_id: uuid.UUID
    family_id: uuid.UUID
    is_spent: bool
    is_revoked: bool


async def insert_user(
    session: AsyncSession, *, email: str, password_hash: str, full_name: str | None, role: Role
) -> User | None:
    """Insert a user, or return None if the email is taken (one atomic statement)."""
    statement = (
        insert(User)
        .values(
            id=uuid.uuid4(),
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            role=role,
            is_active=True,
        )
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User)
    )
    return (await session.scalars(statement)).one_or_none()


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this (normalised) email."""
    return (await session.scalars(select(User).where(User.email == email))).one_or_none()


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user with this id."""
    return await session.get(User, user_id)


async def update_user(session: AsyncSession, user_id: uuid.UUID, **values: Any) -> User | None:
    """Set columns of a user and return the updated row, or None if there is no such user."""
    statement = (
        update(User)
        .where(User.id == user_id)
        .values(**values)
        .returning(User)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(statement)).one_or_none()


async def raise_token_epoch(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """Add one to a user's token epoch (revoking its access tokens); the updated row."""
    return await update_user(session, user_id, token_epoch=User.token_epoch + 1)


async def insert_refresh_token(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    token_digest: str,
    expires_at: dt.datetime,
) -> None:
    """Store a newly issued refresh token (its digest only)."""
    session.add(
        RefreshToken(
            user_id=user_id, family_id=family_id, token_digest=token_digest, expires_at=expires_at
        )
    )
    await session.flush()


async def spend_refresh_token(
    session: AsyncSession, token_digest: str, now: dt.datetime
) -> SpentRefreshToken | None:
    """Mark a live refresh token as used, atomically; None if it is unknown, spent or dead.

    Two concurrent refreshes with one token race on this single ``UPDATE``: the row lock lets
    exactly one of them see ``used_at IS NULL``.
    """
    statement = (
        update(RefreshToken)
        .where(
            RefreshToken.token_digest == token_digest,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.user_id, RefreshToken.family_id)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).one_or_none()
    return SpentRefreshToken(user_id=row.user_id, family_id=row.family_id) if row else None


async def stored_refresh_token(
    session: AsyncSession, token_digest: str
) -> StoredRefreshToken | None:
    """What is known of a stored refresh token, whatever its state."""
    statement = select(
        RefreshToken.user_id, RefreshToken.family_id, RefreshToken.used_at, RefreshToken.revoked_at
    ).where(RefreshToken.token_digest == token_digest)
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    return StoredRefreshToken(
        user_id=row.user_id,
        family_id=row.family_id,
        is_spent=row.used_at is not None,
        is_revoked=row.revoked_at is not None,
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: dt.datetime) -> None:
    """Revoke every refresh token of one login session."""
    await _revoke(session, RefreshToken.family_id == family_id, now)


async def revoke_user_tokens(session: AsyncSession, user_id: uuid.UUID, now: dt.datetime) -> None:
    """Revoke every refresh token of a user (all their sessions)."""
    await _revoke(session, RefreshToken.user_id == user_id, now)


async def _revoke(session: AsyncSession, which: ColumnElement[bool], now: dt.datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(which, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def delete_refresh_tokens_expired_before(session: AsyncSession, before: dt.datetime) -> int:
    """Delete refresh tokens that expired before ``before``; how many."""
    result = await session.execute(
        delete(RefreshToken)
        .where(RefreshToken.expires_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
