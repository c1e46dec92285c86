"""Passwords, tokens and the principal they carry, as typed dependencies.

Passwords are hashed with argon2id (OWASP parameters) in a small thread pool, so a login never
blocks the event loop; the pool leaves one CPU to the loop, so a burst of logins cannot starve
the other requests of the process. A login for an unknown email verifies a dummy hash, so it
costs the same time as a wrong password.
Refresh tokens are opaque random strings stored only as their SHA-256 digest.

Access tokens are short-lived JWTs signed with HS256 only (an explicit allowlist, so neither
``alg: none`` nor a public-key/HMAC confusion is accepted), checked for ``exp``, ``iat``, ``aud``,
``iss`` and their ``typ``. They carry the user's id and role, so authorising a request needs no
database round trip, and the user's token epoch, so that logging out, a password or role change
or disabling the account revokes them before they expire (``core/sessions.py``).

A WebSocket carries its access token in the ``Sec-WebSocket-Protocol`` header, never in the URL
(which proxies, servers and browsers write to their logs and history): the client offers the
subprotocols ``agora`` and ``bearer.<access token>`` (a browser:
``new WebSocket(url, ["agora", "bearer." + token])``) and the server selects ``agora``, never
echoing the token. Every socket reads it with ``websocket_token`` and accepts with
``accept_websocket``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import hashlib
import os
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request, WebSocket
from fastapi.security import OAuth2PasswordBearer
from jwt.algorithms import HMACAlgorithm

from agora.core.errors import Forbidden, Unauthorized
from agora.settings import Settings

ALGORITHM = "HS256"
ISSUER = "agora"
AUDIENCE = "agora-api"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a token type name, not a secret
WEBSOCKET_PROTOCOL = "agora"
WEBSOCKET_TOKEN_PREFIX = "bearer."  # noqa: S105 - a subprotocol prefix, not a secret

REFRESH_TOKEN_BYTES = 32
VERIFIED_TOKEN_CACHE_SIZE = 10_000

# OWASP Password Storage Cheat Sheet: argon2id, 19 MiB of memory, 2 iterations, 1 lane.
_password_hasher = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)

_hashing_pool = ThreadPoolExecutor(
    max_workers=max(1, len(os.sched_getaffinity(0)) - 1), thread_name_prefix="password-hash"
)

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
    token_epoch: int = 0
    expires_at: float = 0.0

    @property
    def is_staff(self) -> bool:
        """Staff and admins operate the shop."""
        return self.role in STAFF_ROLES


STAFF_ROLES = frozenset({Role.STAFF, Role.ADMIN})


def ensure_staff(role: Role) -> None:
    """403 ``staff_only`` unless ``role`` operates the shop (staff or admin)."""
    if role not in STAFF_ROLES:
        raise Forbidden("Staff only.", code="staff_only")


def ensure_admin(role: Role) -> None:
    """403 ``admin_only`` unless ``role`` is admin."""
    if role != Role.ADMIN:
        raise Forbidden("Admins only.", code="admin_only")


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, computed in the hashing pool to keep the loop free."""
    return await asyncio.get_running_loop().run_in_executor(
        _hashing_pool, _password_hasher.hash, password
    )


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``, checked in the hashing pool.

    With no hash (an unknown account) a dummy hash is verified instead, so the answer takes as
    long as for a wrong password and does not reveal which emails have an account.
    """
    return await asyncio.get_running_loop().run_in_executor(
        _hashing_pool, _verify, password_hash, password
    )


def password_needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's."""
    return _password_hasher.check_needs_rehash(password_hash)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        matches = _password_hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


@functools.cache
def _dummy_hash() -> str:
    return _password_hasher.hash(secrets.token_urlsafe(16))


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def refresh_token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a refresh token is stored (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, role: Role, token_epoch: int = 0
) -> str:
    """A signed access token for ``user_id`` valid for ``AGORA_ACCESS_TOKEN_TTL`` seconds, of the
    user's current ``token_epoch``."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": str(user_id),
        "role": role.value,
        "typ": ACCESS_TOKEN_TYPE,
        "epoch": token_epoch,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + dt.timedelta(seconds=settings.access_token_ttl),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)


class _OncePreparedHMAC(HMACAlgorithm):
    """HS256 whose key is checked once per key, not on every token: PyJWT's checks that an HMAC
    secret is not an asymmetric key, a certificate or a JWK (its guard against algorithm
    confusion) cost about a sixth of a token's verification. A key that fails them is refused
    every time; the few keys a process signs with (its secret, one per rotation) are kept."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        """The checked key, from memory after its first use."""
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) < _PREPARED_KEYS:
                self._prepared[key] = prepared
        return prepared


_PREPARED_KEYS = 8
jwt.unregister_algorithm(ALGORITHM)
jwt.register_algorithm(ALGORITHM, _OncePreparedHMAC())

# Verified tokens (keyed by signing key and token) with their expiry: a token is checked once,
# not on every request of its owner (nor twice per request: the default budget reads it too).
_verified_tokens: dict[tuple[str, str], tuple[Principal, float]] = {}


def decode_access_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid access token; ``Unauthorized`` for anything else.

    A token already verified with the same key is answered from memory until it expires.
    """
    cache_key = (settings.secret_key.get_secret_value(), token)
    cached = _verified_tokens.get(cache_key)
    if cached is not None and cached[1] > time.time():
        return cached[0]
    principal, expires_at = _verify_access_token(cache_key[0], token)
    if len(_verified_tokens) >= VERIFIED_TOKEN_CACHE_SIZE:
        _verified_tokens.clear()
    _verified_tokens[cache_key] = (principal, expires_at)
    return principal


def _verify_access_token(secret: str, token: str) -> tuple[Principal, float]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "typ"]},
        )
        if claims["typ"] != ACCESS_TOKEN_TYPE:
            raise jwt.InvalidTokenError("not an access token")
        expires_at = float(claims["exp"])
        principal = Principal(
            user_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            token_epoch=int(claims.get("epoch", 0)),
            expires_at=expires_at,
        )
        return principal, expires_at
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized(
            "The access token is invalid or expired.",
            code="invalid_token",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


def websocket_token(websocket: WebSocket) -> str | None:
    """The access token a WebSocket client offered as the subprotocol ``bearer.<token>``; None
    when it offered none (a ``token`` in the query string is never read)."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    for protocol in offered:
        if protocol.startswith(WEBSOCKET_TOKEN_PREFIX):
            return protocol.removeprefix(WEBSOCKET_TOKEN_PREFIX)
    return None


async def accept_websocket(websocket: WebSocket) -> None:
    """Complete the handshake, selecting ``agora`` when the client offered it (a browser that
    offered subprotocols fails a handshake that selects none); the token is never echoed."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    selected = WEBSOCKET_PROTOCOL if WEBSOCKET_PROTOCOL in offered else None
    await websocket.accept(subprotocol=selected)


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
    ensure_staff(principal.role)
    return principal


async def require_admin(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    """The caller, who must be an admin; 403 otherwise."""
    ensure_admin(principal.role)
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
StaffPrincipal = Annotated[Principal, Depends(require_staff)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
