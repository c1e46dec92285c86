"""Rate limits kept in Redis, so every API process spends from the same budgets.

A ``RateLimit`` is a named budget (``"login-ip"``, ``10/minute``); ``RateLimiter.enforce`` spends
one unit of it for an identity (an IP, an account, a buyer) and raises ``RateLimited`` when it is
spent, with ``Retry-After`` and the IETF draft ``RateLimit-Policy`` / ``RateLimit`` headers.
Counting is the sliding-window-counter strategy of ``limits`` (same algorithm, same keys), run by
our own script (``core/lua/ratelimit.lua``) so that every budget of a request is spent in one
Redis round trip: ``enforce_all`` spends, say, the default budget and a purchase's per-buyer and
per-IP budgets together, and a refusal carries what its headers need (no second call).
``DefaultBudgetMiddleware`` applies the default per-client budget to the whole API, except on
the routes that spend it themselves along with their own budgets.

The same call checks that the request's access token was not revoked (``core/sessions.py``):
the token epoch rides along with the budgets, so revocation costs no extra round trip.

When Redis cannot be reached, the default budget lets requests through (and logs it), and skips
Redis for a few seconds (``core/redis.Breaker``) so that a frozen Redis does not cost every
request a timeout: a throttle that fails closed would turn a Redis hiccup into a full outage.
Revoked tokens are then not recognised until Redis answers again. Budgets that guard something
(logins, registrations, flash-sale purchases) fail closed instead: the Redis error reaches the
app's handler, which answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import structlog
from limits import RateLimitItem, parse
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from agora.core.errors import RateLimited, Unauthorized, error_response
from agora.core.redis import Breaker, LuaScript, run_script
from agora.core.security import Principal, decode_access_token
from agora.core.sessions import epoch_key
from agora.settings import Settings

KEY_PREFIX = "agora:ratelimit"
log = structlog.get_logger(__name__)
_REVOKED = -1
_MAX_KNOWN_CLIENTS = 100_000  # budget calls kept ready by the default budget, per process

# Gives back ``ARGV[1]`` units of each budget (KEYS: previous and current window per budget),
# from the window that holds them, never below zero.
_REFUND = """
for index = 1, #KEYS / 2 do
  local previous_key, current_key = KEYS[index * 2 - 1], KEYS[index * 2]
  if (tonumber(redis.call('GET', current_key)) or 0) > 0 then
    redis.call('DECRBY', current_key, ARGV[1])
  elseif (tonumber(redis.call('GET', previous_key)) or 0) > 0 then
    redis.call('DECRBY', previous_key, ARGV[1])
  end
end
return 0
"""


@dataclass(frozen=True)
class RateLimit:
    """A named budget: at most ``quota`` hits in any ``window`` seconds."""

    name: str
    item: RateLimitItem

    @property
    def quota(self) -> int:
        """How many hits the window allows."""
        return self.item.amount

    @property
    def window(self) -> int:
        """The window's length in seconds."""
        return self.item.get_expiry()

    @property
    def policy_header(self) -> str:
        """This policy as an item of the ``RateLimit-Policy`` header."""
        return f'"{self.name}";q={self.quota};w={self.window}'

    def keys(self, identity: str) -> tuple[str, str]:
        """The Redis keys of ``identity``'s previous and current windows (``limits``' layout)."""
        current = f"{KEY_PREFIX}:{{{self.item.key_for(self.name, identity)}}}"
        return f"{current}/-1", current


@functools.cache
def rate_limit(name: str, spec: str) -> RateLimit:
    """The budget ``name`` from a setting such as ``"10/minute"`` (parsed once)."""
    return RateLimit(name=name, item=parse(spec))


@functools.cache
def budget_script_source() -> bytes:
    """The Lua that spends a ``BudgetCall`` (its ``KEYS`` and ``ARGV``), for scripts that
    embed it to spend a request's budgets in their own round trip."""
    return resources.files("agora.core").joinpath("lua", "ratelimit.lua").read_bytes()


@functools.cache
def _budget_script() -> LuaScript:
    """The budget script and the SHA by which Redis knows it once loaded."""
    return LuaScript.of(budget_script_source())


class RateLimiter:
    """Spends rate-limit budgets kept in Redis."""

    def __init__(self, redis: Redis, *, breaker: Breaker | None = None) -> None:
        """Count in ``redis`` (the app's client and pool); ``breaker`` remembers outages for
        the budgets that fail open."""
        self._redis = redis
        self._refund = redis.register_script(_REFUND)
        self._breaker = breaker or Breaker(cooldown=5.0)

    async def enforce(self, limit: RateLimit, identity: str, *, cost: int = 1) -> None:
        """Spend ``cost`` of ``identity``'s budget; ``RateLimited`` (429) if it is spent."""
        await self.enforce_all([(limit, identity)], cost=cost)

    async def enforce_all(
        self,
        spends: Sequence[tuple[RateLimit, str]],
        *,
        cost: int = 1,
        principal: Principal | None = None,
        fail_open: bool = False,
    ) -> None:
        """Spend ``cost`` of each (budget, identity) in order, in one Redis call; the first
        budget that cannot pay answers ``RateLimited`` (429) with its own headers.

        With a ``principal``, its token is first checked against its user's token epoch:
        ``Unauthorized`` (401 ``token_revoked``) when it was revoked. When Redis cannot be
        reached, ``fail_open`` lets the request through; otherwise the Redis error is raised.
        """
        await self.spend(BudgetCall.of(spends, cost=cost, principal=principal), fail_open=fail_open)

    async def spend(self, call: BudgetCall, *, fail_open: bool = False) -> None:
        """Spend what ``call`` names in one Redis call (see ``enforce_all``)."""
        if fail_open and self._breaker.is_open:
            return
        try:
            answer: list[int] = await run_script(self._redis, call.command, _budget_script().source)
        except RedisError:
            if not fail_open:
                raise
            self._breaker.trip()
            log.warning("rate_limit_storage_unreachable", policy=call.spends[0][0].name)
            return
        call.check(answer)

    async def refund(self, spends: Sequence[tuple[RateLimit, str]], *, cost: int = 1) -> None:
        """Give back what ``enforce_all`` spent, for budgets that count only failures (a login
        that succeeded). Best effort: the request already succeeded."""
        keys = [key for limit, identity in spends for key in limit.keys(identity)]
        try:
            await self._refund(keys=keys, args=[cost])
        except RedisError:
            log.warning("rate_limit_refund_failed", policy=spends[0][0].name)


@dataclass(frozen=True)
class BudgetCall:
    """The keys and arguments with which ``core/lua/ratelimit.lua`` spends a request's budgets
    and checks its token, so that a script of another module can spend them in its own Redis
    round trip (``budget_script_source``), then hand the answer to ``check``."""

    spends: Sequence[tuple[RateLimit, str]]
    keys: list[str]
    args: list[int | str]

    @classmethod
    def of(
        cls,
        spends: Sequence[tuple[RateLimit, str]],
        *,
        cost: int = 1,
        principal: Principal | None = None,
    ) -> BudgetCall:
        """Spending ``cost`` of each (budget, identity) in order, after checking the token of
        ``principal`` against its user's token epoch."""
        keys: list[str] = []
        args: list[int | str] = [""]
        if principal is not None:
            keys.append(epoch_key(principal.user_id))
            args[0] = principal.token_epoch
        for limit, identity in spends:
            keys.extend(limit.keys(identity))
            args.extend((limit.quota, limit.window, cost))
        return cls(spends, keys, args)

    @functools.cached_property
    def command(self) -> bytes:
        """The ``EVALSHA`` of the budget script with these keys and arguments, packed."""
        return _budget_script().command(self.keys, self.args)

    def check(self, answer: Sequence[int]) -> None:
        """Nothing when the script's ``answer`` says every budget paid; else ``Unauthorized``
        (401 ``token_revoked``) or ``RateLimited`` (429) with the refusing budget's headers."""
        if answer[0] == 0:
            return
        if answer[0] == _REVOKED:
            raise token_revoked()
        limit = self.spends[answer[0] - 1][0]
        remaining, retry_after = _window_stats(limit, *answer[1:])
        raise RateLimited(
            "Too many requests; retry later.",
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Policy": limit.policy_header,
                "RateLimit": f'"{limit.name}";r={remaining};t={retry_after}',
            },
            policy=limit.name,
        )


def token_revoked() -> Unauthorized:
    """The refusal of an access token revoked since it was issued."""
    return Unauthorized(
        "The access token has been revoked; log in again or refresh it.",
        code="token_revoked",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _window_stats(
    limit: RateLimit, previous: int, previous_ttl_ms: int, current: int, current_ttl_ms: int
) -> tuple[int, int]:
    """Units left and seconds until one comes back, as ``limits`` computes them."""
    window = limit.window
    previous_expires_in, current_expires_in = previous_ttl_ms / 1000, current_ttl_ms / 1000
    weighted = previous * previous_expires_in / window + current
    remaining = max(0, limit.quota - math.floor(weighted))
    reset_in = math.inf
    if previous:
        reset_in = previous_expires_in % (window / previous)
    if current:
        reset_in = min(reset_in, current_expires_in % window)
    if math.isinf(reset_in):
        reset_in = 0
    return remaining, max(1, math.ceil(reset_in - 1e-9))


def client_ip(connection: HTTPConnection) -> str:
    """The caller's address: the peer, or the client a trusted proxy names (``core/middleware``)."""
    return _address(connection.scope)


def bearer_principal(connection: HTTPConnection, settings: Settings) -> Principal | None:
    """The principal of the request's bearer token when it is valid, else None."""
    authorization = connection.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return decode_access_token(settings, token)
    except Unauthorized:
        return None


def client_identity(connection: HTTPConnection, principal: Principal | None) -> str:
    """Who spends the default budget: the user of a valid bearer token, else the address."""
    if principal is not None:
        return f"user:{principal.user_id}"
    return address_identity(connection.scope)


def address_identity(scope: Scope) -> str:
    """Who spends the default budget when nobody is signed in: the caller's address, read from
    the scope (the trusted-proxy layer has already put the forwarded client there)."""
    return f"ip:{_address(scope)}"


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def default_budget(settings: Settings) -> RateLimit:
    """The per-client budget every API request spends."""
    return rate_limit("default", settings.rate_limit_default)


class DefaultBudgetMiddleware:
    """Spends one unit of the caller's default budget per API request (pure ASGI), and refuses
    a revoked access token (401) in the same Redis call.

    Paths under ``unmetered_prefixes`` spend nothing (callers authenticated another way); paths
    matching a ``self_metered_paths`` template spend it in their endpoint, in the same Redis call
    as their own budgets (``RateLimiter.enforce_all``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        path_prefix: str,
        unmetered_prefixes: tuple[str, ...] = (),
        self_metered_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.path_prefix = path_prefix
        self.unmetered_prefixes = unmetered_prefixes
        self.self_metered: tuple[re.Pattern[str], ...] = tuple(
            compile_path(template)[0] for template in self_metered_paths
        )
        self.limit = default_budget(settings)
        self._calls: dict[tuple[str, int | None], BudgetCall] = {}

    def _call(self, connection: HTTPConnection, principal: Principal | None) -> BudgetCall:
        """The client's budget call, built and packed once per client and token epoch (the
        same bytes for each of its requests)."""
        identity = client_identity(connection, principal)
        key = (identity, None if principal is None else principal.token_epoch)
        call = self._calls.get(key)
        if call is None:
            if len(self._calls) >= _MAX_KNOWN_CLIENTS:
                self._calls.clear()
            call = BudgetCall.of([(self.limit, identity)], principal=principal)
            self._calls[key] = call
        return call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if (
            not path.startswith(self.path_prefix)
            or path.startswith(self.unmetered_prefixes)
            or any(pattern.match(path) for pattern in self.self_metered)
        ):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        limiter: RateLimiter = scope["app"].state.services.rate_limiter
        principal = bearer_principal(connection, self.settings)
        try:
            await limiter.spend(self._call(connection, principal), fail_open=True)
        except (RateLimited, Unauthorized) as refusal:
            await error_response(refusal, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
