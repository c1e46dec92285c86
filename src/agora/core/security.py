"""Access tokens and the principal they carry, as typed dependencies.

Access tokens are short-lived JWTs signed with HS256 only (an explicit allowlist, so neither
``alg: none`` nor a public-key/HMAC confusion is accepted), checked for ``exp``, ``iat``, ``aud``,
``iss`` and their ``typ``. They carry the user's id and role, so authorising a request needs no
database round trip; the short lifetime bounds how long a role change takes to apply.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from agora.core.errors import Forbidden, Unauthorized
from agora.settings import Settings

ALGORITHM = "HS256"
ISSUER = "agora"
AUDIENCE = "agora-api"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a token type name, not a secret

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


class Role(enum.StrEnum):
    """What a user may do: buy, operate the shop, or administer it."""

    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: uuid.UUID
    role: Role

    @property
    def is_staff(self) -> bool:
        """Staff and admins operate the shop."""
        return self.role in (Role.STAFF, Role.ADMIN)


def issue_access_token(settings: Settings, user_id: uuid.UUID, role: Role) -> str:
    """A signed access token for ``user_id`` valid for ``AGORA_ACCESS_TOKEN_TTL`` seconds."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": str(user_id),
        "role": role.value,
        "typ": ACCESS_TOKEN_TYPE,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + dt.timedelta(seconds=settings.access_token_ttl),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid access token; ``Unauthorized`` for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "typ"]},
        )
        if claims["typ"] != ACCESS_TOKEN_TYPE:
            raise Unauthorized("Not an access token.", code="invalid_token")
        return Principal(user_id=uuid.UUID(claims["sub"]), role=Role(claims["role"]))
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized(
            "The access token is invalid or expired.",
            code="invalid_token",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.services.settings
    return settings


async def optional_principal(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal | None:
    """The caller if a bearer token is sent (it must then be valid), else None."""
    if token is None:
        return None
    principal = decode_access_token(_settings(request), token)
    request.state.principal = principal
    return principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller; 401 when no bearer token is sent."""
    if principal is None:
        raise Unauthorized(
            "Authentication required.", code="not_authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    return principal


async def require_staff(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    """The caller, who must be staff or admin; 403 otherwise."""
    if not principal.is_staff:
        raise Forbidden("Staff only.", code="staff_only")
    return principal


async def require_admin(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    """The caller, who must be an admin; 403 otherwise."""
    if principal.role != Role.ADMIN:
        raise Forbidden("Admins only.", code="admin_only")
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
StaffPrincipal = Annotated[Principal, Depends(require_staff)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
