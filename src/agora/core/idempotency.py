"""``Idempotency-Key`` for POSTs that create something (orders, payments, flash-sale purchases).

A client may retry a request whose answer it never received; with the same key and the same body
it gets the first answer back instead of a second order. Keys are scoped to the caller (a user id,
or a cart token for an anonymous caller) and live 24 hours.

- same key, same request (method + path + canonical body hash): the stored status, headers and
  body are replayed, with ``Idempotent-Replayed: true``;
- same key, another request: 422 ``idempotency_key_reused``;
- same key while the first request is still running: 409 ``idempotency_key_in_flight``.

Why PostgreSQL and not Redis: the stored answer is inserted in the request's own transaction, the
one that creates the order. Both commit together or not at all, so a replay can never return an
order that was rolled back, and an order can never exist without its key (a crash between "order
committed" and "key stored in Redis" would let a retry create a second order). Concurrent requests
with one key are told apart by a transaction-scoped advisory lock taken without waiting
(``pg_try_advisory_xact_lock``): the holder does the work, the others get 409 at once instead of
holding a connection while they wait, and the lock vanishes with the transaction, even when the
process dies. PostgreSQL releases the lock only after the commit is visible, so the next request
to take it always sees the stored answer. Failed requests (4xx, 5xx) roll back and store nothing:
a retry runs again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from sqlalchemy import DateTime, Integer, LargeBinary, String, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import Response

from agora.core.db import Base, utcnow
from agora.core.driver import DriverStatement
from agora.core.errors import Conflict, ValidationFailed

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL = dt.timedelta(hours=24)
_LOCK_NAMESPACE = 7_461_101  # first half of the two-int advisory lock key, apart from other locks
_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


class IdempotencyRecord(Base):
    """The first successful answer to a request sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


# Sent on every keyed request: built once and sent straight to the driver (core/driver.py).
_LOCK = DriverStatement(
    select(func.pg_try_advisory_xact_lock(_LOCK_NAMESPACE, bindparam("lock_id", type_=Integer)))
)
_Record = IdempotencyRecord
_LOOKUP = DriverStatement(
    select(_Record.fingerprint, _Record.status_code, _Record.headers, _Record.body).where(
        _Record.scope == bindparam("scope"),
        _Record.key == bindparam("key"),
        _Record.expires_at > func.now(),
    )
)
_STORED = ("fingerprint", "status_code", "headers", "body", "created_at", "expires_at")
_INSERT = insert(_Record).values(
    {column: bindparam(column) for column in ("scope", "key", *_STORED)}
)
# An expired record of the same key is replaced; the advisory lock makes this the only writer.
_STORE = DriverStatement(
    _INSERT.on_conflict_do_update(
        index_elements=[_Record.scope, _Record.key],
        set_={column: _INSERT.excluded[column] for column in _STORED},
    )
)


@dataclass(frozen=True)
class StoredResponse:
    """An answer that can be stored and replayed byte for byte."""

    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    is_replay: bool = False

    def to_response(self) -> Response:
        """The HTTP response, flagged when it is a replay."""
        headers = dict(self.headers)
        if self.is_replay:
            headers[REPLAYED_HEADER] = "true"
        return Response(self.body, self.status_code, headers, media_type="application/json")


@dataclass(frozen=True)
class IdempotentRequest:
    """The ``Idempotency-Key`` of a request (if any) and the fingerprint of the request (empty
    without a key)."""

    key: str | None
    fingerprint: str


def user_scope(user_id: object) -> str:
    """The key scope of an authenticated caller."""
    return f"user:{user_id}"


def cart_token_scope(cart_token: str) -> str:
    """The key scope of an anonymous caller, identified by its cart token (hashed, not stored)."""
    return "cart:" + hashlib.sha256(cart_token.encode()).hexdigest()[:40]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of method, path and body; a JSON body is canonicalised (key order, spacing)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), hashlib.sha256(canonical).digest()):
        digest.update(part + b"\n")
    return digest.hexdigest()


async def idempotent_request(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            pattern=_KEY_PATTERN,
            description="Retry-safe key (1-255 visible ASCII characters), scoped to the caller.",
        ),
    ] = None,
) -> IdempotentRequest:
    """The request's key and fingerprint (FastAPI dependency); without a key there is nothing to
    compare a retry with, so no fingerprint is computed."""
    if idempotency_key is None:
        return IdempotentRequest(None, "")
    body = await request.body()
    return IdempotentRequest(idempotency_key, fingerprint(request.method, request.url.path, body))


IdempotencyDep = Annotated[IdempotentRequest, Depends(idempotent_request)]


async def respond_once(
    session: AsyncSession,
    request: IdempotentRequest,
    scope: str,
    produce: Callable[[], Awaitable[StoredResponse]],
    *,
    ttl: dt.timedelta = DEFAULT_TTL,
) -> StoredResponse:
    """Run ``produce`` once per key: replay its stored answer for a retry of the same request.

    Call it inside the request's unit of work, as the endpoint's whole body: the answer is stored
    in the same transaction as what ``produce`` wrote.
    """
    if request.key is None:
        return await produce()
    await _lock_or_conflict(session, scope, request.key)
    stored = await _LOOKUP.fetchrow(session, scope=scope, key=request.key)
    if stored is not None:
        if stored["fingerprint"] != request.fingerprint:
            raise ValidationFailed(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused",
            )
        return StoredResponse(
            stored["status_code"], stored["body"], stored["headers"], is_replay=True
        )
    response = await produce()
    if 200 <= response.status_code < 300:
        await _store(session, scope, request, response, ttl)
    return response


async def _lock_or_conflict(session: AsyncSession, scope: str, key: str) -> None:
    lock_id = int.from_bytes(
        hashlib.blake2b(f"{scope}\0{key}".encode(), digest_size=4).digest(), "big", signed=True
    )
    locked = await _LOCK.fetchrow(session, lock_id=lock_id)
    if locked is None or not locked[0]:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_key_in_flight",
            headers={"Retry-After": "1"},
        )


async def _store(
    session: AsyncSession,
    scope: str,
    request: IdempotentRequest,
    response: StoredResponse,
    ttl: dt.timedelta,
) -> None:
    now = utcnow()
    await _STORE.fetch(
        session,
        scope=scope,
        key=request.key,
        fingerprint=request.fingerprint,
        status_code=response.status_code,
        headers=response.headers,
        body=response.body,
        created_at=now,
        expires_at=now + ttl,
    )


async def purge_expired(session: AsyncSession) -> int:
    """Delete expired keys (run periodically); returns how many were deleted."""
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= func.now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
