"""The tables of accounts."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, ForeignKey, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base, TimestampMixin, enum_column
from agora.core.security import Role


class User(TimestampMixin, Base):
    """Someone who can log in: a buyer, a member of staff or an admin."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(enum_column(Role), default=Role.CUSTOMER)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Raised to revoke every access token issued before (logout, password, role, disabling);
    # each access token carries the value it was issued with (``core/sessions.py``).
    token_epoch: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class RefreshToken(Base):
    """One refresh token of a login session, stored as its SHA-256 digest.

    Every token issued by rotation shares the ``family_id`` of the login that started it, so a
    reused (already spent) token can revoke the whole session at once.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
