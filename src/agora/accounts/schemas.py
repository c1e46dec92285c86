"""Request and response bodies of the accounts API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from agora.core.security import Role

# ASVS 5 (6.2.1, 6.2.9): at least 8 characters, and long passphrases allowed.
NewPassword = Annotated[str, Field(min_length=8, max_length=128)]
Password = Annotated[str, Field(min_length=1, max_length=128)]
RefreshTokenText = Annotated[str, Field(min_length=1, max_length=2048)]


class RegisterRequest(BaseModel):
    """A new account."""

    email: EmailStr
    password: NewPassword
    full_name: Annotated[str | None, Field(max_length=200)] = None


class UserResponse(BaseModel):
    """An account as its owner (or staff) sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: dt.datetime


class TokenResponse(BaseModel):
    """An OAuth2 token response (RFC 6749 §5.1) with a rotating refresh token."""

    model_config = ConfigDict(from_attributes=True)

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    """A refresh token to spend (refresh) or to revoke with its session (logout)."""

    refresh_token: RefreshTokenText


class ChangePasswordRequest(BaseModel):
    """The current password, proving it is the owner, and the new one."""

    current_password: Password
    new_password: NewPassword


class UserUpdateRequest(BaseModel):
    """What an admin may change on an account."""

    role: Role | None = None
    is_active: bool | None = None
