"""Account rules: registration, login, refresh-token rotation, logout, passwords and roles.

A login starts a session: a family of refresh tokens. Each refresh spends the presented token and
issues the next one of the same family; presenting a spent token again means it was stolen (or
replayed), so the whole family is revoked (OWASP ASVS 5, 10.4.5).

Access tokens are revoked by raising the user's token epoch (``core/sessions.py``): on logout, a
password change, a role change, disabling the account, and a detected refresh-token reuse. Every
access token of that user issued before is then refused on every endpoint and its WebSockets are
closed; the other sessions' refresh tokens still work, so other devices just refresh.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.accounts import repository
from agora.accounts.models import User
from agora.core.db import utcnow
from agora.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from agora.core.security import (
    Role,
    hash_password,
    issue_access_token,
    new_refresh_token,
    password_needs_rehash,
    refresh_token_digest,
    verify_password,
)
from agora.core.sessions import Revocation, announce_after_commit
from agora.settings import Settings

PURGE_REFRESH_TOKENS_TASK = "agora.accounts.purge_refresh_tokens"
EXPIRED_TOKEN_RETENTION = dt.timedelta(days=7)


@dataclass(frozen=True)
class TokenPair:
    """What a login or a refresh hands out."""

    access_token: str
    refresh_token: str
    expires_in: int


class RefreshTokenReused(Unauthorized):
    """A spent refresh token was presented again: its whole session has been revoked."""

    code = "refresh_token_reused"


def normalise_email(email: str) -> str:
    """The form under which an email is stored and looked up (one account per mailbox)."""
    return email.strip().lower()


async def register(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str | None = None,
    role: Role = Role.CUSTOMER,
) -> User:
    """Create an account; ``Conflict`` (409) if the email already has one."""
    password_hash = await hash_password(password)
    user = await repository.insert_user(
        session,
        email=normalise_email(email),
        password_hash=password_hash,
        full_name=full_name,
        role=role,
    )
    if user is None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    return user


async def login(session: AsyncSession, settings: Settings, email: str, password: str) -> TokenPair:
    """Check the credentials and start a session (a new refresh-token family)."""
    user = await repository.user_by_email(session, normalise_email(email))
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if not user.is_active:
        raise Forbidden("This account is disabled.", code="account_disabled")
    if password_needs_rehash(user.password_hash):
        await repository.update_user(session, user.id, password_hash=await hash_password(password))
    return await _start_session(session, settings, user)


async def refresh(
    session: AsyncSession, redis: Redis, settings: Settings, refresh_token: str
) -> TokenPair | RefreshTokenReused:
    """Spend a refresh token and issue the next pair of its session.

    A reused token revokes its family; that refusal is returned rather than raised, so that the
    caller's unit of work commits the revocation instead of rolling it back.
    """
    now = utcnow()
    digest = refresh_token_digest(refresh_token)
    spent = await repository.spend_refresh_token(session, digest, now)
    if spent is None:
        stored = await repository.stored_refresh_token(session, digest)
        if stored is not None and stored.is_spent:
            await repository.revoke_family(session, stored.family_id, now)
            await revoke_access_tokens(session, redis, settings, stored.user_id)
            return RefreshTokenReused(
                "This refresh token was already used; its session has been revoked.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise _invalid_refresh_token()
    user = await repository.user_by_id(session, spent.user_id)
    if user is None or not user.is_active:
        raise _invalid_refresh_token()
    return await _issue_pair(session, settings, user, spent.family_id, now)


async def logout(
    session: AsyncSession, redis: Redis, settings: Settings, refresh_token: str
) -> None:
    """End the session of a refresh token (revoke its family) and the user's access tokens;
    unknown or already revoked tokens are ignored (a stale token cannot log anyone out)."""
    stored = await repository.stored_refresh_token(session, refresh_token_digest(refresh_token))
    if stored is not None and not stored.is_revoked:
        await repository.revoke_family(session, stored.family_id, utcnow())
        await revoke_access_tokens(session, redis, settings, stored.user_id)


async def change_password(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    user: User,
    current_password: str,
    new_password: str,
) -> TokenPair:
    """Replace the password after checking the current one; every session and access token is
    revoked, and a new session is started."""
    if not await verify_password(user.password_hash, current_password):
        raise Forbidden("The current password is wrong.", code="wrong_password")
    await repository.update_user(session, user.id, password_hash=await hash_password(new_password))
    await repository.revoke_user_tokens(session, user.id, utcnow())
    updated = await revoke_access_tokens(session, redis, settings, user.id)
    return await _start_session(session, settings, updated)


async def revoke_access_tokens(
    session: AsyncSession, redis: Redis, settings: Settings, user_id: uuid.UUID
) -> User:
    """Raise the user's token epoch, and announce it once committed: every access token issued
    before is refused, and its WebSockets closed."""
    user = await repository.raise_token_epoch(session, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    announce_after_commit(
        session,
        redis,
        Revocation(user.id, user.token_epoch),
        access_token_ttl=settings.access_token_ttl,
    )
    return user


async def active_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The account behind an access token; 401 if it was deleted or disabled since."""
    user = await repository.user_by_id(session, user_id)
    if user is None or not user.is_active:
        raise Unauthorized(
            "This account no longer exists or is disabled.",
            code="account_disabled",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """Any account, for staff."""
    user = await repository.user_by_id(session, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


async def update_user(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    role: Role | None,
    is_active: bool | None,
) -> User:
    """Change an account's role or disable it. Either revokes its access tokens (they carry the
    role); disabling also ends all its sessions."""
    changes = {
        name: value
        for name, value in (("role", role), ("is_active", is_active))
        if value is not None
    }
    if changes:
        user = await repository.update_user(session, user_id, **changes)
    else:
        user = await repository.user_by_id(session, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if is_active is False:
        await repository.revoke_user_tokens(session, user_id, utcnow())
    if changes:
        user = await revoke_access_tokens(session, redis, settings, user_id)
    return user


async def _start_session(session: AsyncSession, settings: Settings, user: User) -> TokenPair:
    return await _issue_pair(session, settings, user, uuid.uuid4(), utcnow())


async def _issue_pair(
    session: AsyncSession,
    settings: Settings,
    user: User,
    family_id: uuid.UUID,
    now: dt.datetime,
) -> TokenPair:
    refresh_token = new_refresh_token()
    await repository.insert_refresh_token(
        session,
        user_id=user.id,
        family_id=family_id,
        token_digest=refresh_token_digest(refresh_token),
        expires_at=now + dt.timedelta(seconds=settings.refresh_token_ttl),
    )
    return TokenPair(
        access_token=issue_access_token(settings, user.id, user.role, user.token_epoch),
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl,
    )


def _invalid_refresh_token() -> Unauthorized:
    return Unauthorized(
        "The refresh token is invalid, expired or revoked.",
        code="invalid_refresh_token",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def purge_expired_refresh_tokens(session: AsyncSession) -> int:
    """Delete refresh tokens expired for longer than ``EXPIRED_TOKEN_RETENTION`` (periodic task).

    They are kept a while after expiry so that a stolen, spent token presented late is still
    recognised as reuse and revokes its family; after that it is refused as unknown either way.
    """
    return await repository.delete_refresh_tokens_expired_before(
        session, utcnow() - EXPIRED_TOKEN_RETENTION
    )
