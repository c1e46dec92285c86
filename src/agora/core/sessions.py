"""Revoking a user's access tokens before they expire: the per-user token epoch.

An access token is a signed JWT checked without a database round trip, so it stays valid until
it expires unless something says otherwise. Each token carries its user's token epoch at issue
time (claim ``epoch``; the record is ``users.token_epoch``). Logging out, changing the password
or the role, and disabling the account raise the epoch; once that change has committed, the new
epoch is written to Redis and published on ``REVOCATIONS_CHANNEL``.

- Every API request with a bearer token compares its token's epoch with Redis inside the
  rate-limit call it makes anyway (``core/ratelimit.py``): no extra round trip, and a token of an
  older epoch is refused with 401 ``token_revoked`` on every endpoint.
- Every API process closes the WebSockets opened with such a token when the message arrives
  (``realtime/``).

The Redis key lives as long as an access token (plus a margin for clock skew): by then every
token of an older epoch has expired on its own. If Redis loses the key (or cannot be written
when the change commits), the revoked tokens work again until they expire, at most
``AGORA_ACCESS_TOKEN_TTL`` seconds; the refresh tokens are revoked in PostgreSQL regardless.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import call_after_commit

EPOCH_KEY_PREFIX = "agora:token-epoch:"
REVOCATIONS_CHANNEL = "agora:token-revocations"
CLOCK_SKEW_MARGIN_S = 60
log = structlog.get_logger(__name__)

# KEYS[1]: the user's epoch key. ARGV: new epoch, TTL seconds, channel, message.
# The epoch only goes up, whatever order two revocations' writes arrive in.
_RAISE_EPOCH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = tonumber(ARGV[1])
if epoch >= current then
  redis.call('SET', KEYS[1], epoch, 'EX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return epoch
"""


@dataclass(frozen=True)
class Revocation:
    """Every access token of ``user_id`` older than ``epoch`` is revoked."""

    user_id: uuid.UUID
    epoch: int

    def to_message(self) -> bytes:
        """The message published on ``REVOCATIONS_CHANNEL``."""
        return orjson.dumps({"user_id": str(self.user_id), "epoch": self.epoch})

    @classmethod
    def from_message(cls, data: bytes) -> Revocation:
        """The revocation a published message announces."""
        fields = orjson.loads(data)
        return cls(uuid.UUID(fields["user_id"]), int(fields["epoch"]))


def epoch_key(user_id: uuid.UUID) -> str:
    """The Redis key holding a user's current token epoch (absent: no recent revocation)."""
    return f"{EPOCH_KEY_PREFIX}{user_id}"


async def announce(redis: Redis, revocation: Revocation, *, access_token_ttl: int) -> None:
    """Write the new epoch to Redis and tell every process, in one atomic step."""
    await redis.eval(
        _RAISE_EPOCH,
        1,
        epoch_key(revocation.user_id),
        revocation.epoch,
        access_token_ttl + CLOCK_SKEW_MARGIN_S,
        REVOCATIONS_CHANNEL,
        revocation.to_message(),
    )


def announce_after_commit(
    session: AsyncSession, redis: Redis, revocation: Revocation, *, access_token_ttl: int
) -> None:
    """Announce ``revocation`` once the session's transaction (which raised the epoch) commits."""

    async def announce_committed() -> None:
        try:
            await announce(redis, revocation, access_token_ttl=access_token_ttl)
        except RedisError:
            log.error("token_revocation_not_announced", user_id=str(revocation.user_id))

    call_after_commit(session, announce_committed)


async def is_revoked(redis: Redis, user_id: uuid.UUID, token_epoch: int) -> bool:
    """Whether a token of ``token_epoch`` was revoked since it was issued (one GET)."""
    current = await redis.get(epoch_key(user_id))
    return current is not None and int(current) > token_epoch
