"""The default per-client budget, spent in batches: for answers that cost no more than a dict
lookup (``core/edge.py``), a Redis round trip per request would be most of their cost.

Each process counts a client's requests locally and spends them in Redis (the same
sliding-window budget ``DefaultBudgetMiddleware`` spends, same keys) once ``batch`` of them have
accumulated, in one call with ``cost=batch``; the request that completes a batch waits for that
call. When Redis refuses a batch, the client is refused locally, without asking Redis again,
until the ``Retry-After`` it answered.

**Error bound.** Per client and per process, at most ``batch - 1`` requests are answered but not
yet spent in Redis; across ``P`` processes a client may thus get up to ``P × (batch - 1)``
requests beyond its budget per window, and be refused up to ``batch - 1`` requests early (a
batch is refused whole). ``batch`` is 1 % of the quota, between 1 and 32: a budget of
600/minute is exact to 5 requests per process, and small budgets (under 200 per window) are
spent one request at a time, exactly like ``DefaultBudgetMiddleware``.
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import Scope

from agora.core.errors import RateLimited, error_response
from agora.core.ratelimit import RateLimit, RateLimiter, address_identity

_MAX_BATCH = 32
_MAX_CLIENTS = 100_000


def batch_size(limit: RateLimit) -> int:
    """How many requests a process spends at once: 1 % of the quota, within [1, 32]."""
    return max(1, min(_MAX_BATCH, limit.quota // 100))


class BatchedBudget:
    """One process's unspent requests and local refusals, per credential-less client."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.batch = batch_size(limit)
        self._unspent: dict[str, int] = {}
        self._refused: dict[str, tuple[float, RateLimited]] = {}

    async def spend(self, scope: Scope) -> Response | None:
        """Count one request of the scope's client; the refusal to send when its budget is
        spent, else None."""
        identity = address_identity(scope)
        refused = self._refused.get(identity)
        if refused is not None:
            if refused[0] > time.monotonic():
                return error_response(refused[1], scope["path"])
            del self._refused[identity]
        unspent = self._unspent.get(identity, 0) + 1
        if unspent < self.batch:
            self._unspent[identity] = unspent
            return None
        self._unspent.pop(identity, None)
        if len(self._unspent) > _MAX_CLIENTS:
            self._unspent.clear()  # idle clients' remainders: within the error bound
        limiter: RateLimiter = scope["app"].state.services.rate_limiter
        try:
            await limiter.enforce_all([(self.limit, identity)], cost=unspent, fail_open=True)
        except RateLimited as refusal:
            if self.batch > 1:  # a single request asks Redis again, as the middleware does
                retry_after = float(refusal.headers.get("Retry-After", "1"))
                self._refused[identity] = (time.monotonic() + retry_after, refusal)
            return error_response(refusal, scope["path"])
        return None
