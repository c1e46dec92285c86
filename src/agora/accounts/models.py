"""The tables of accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import String
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
