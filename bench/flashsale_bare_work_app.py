"""The second floor of the flash-sale purchase benchmark: bare JSON plus the work a purchase
cannot skip. A bare Starlette app that takes the same request and, like Agora, verifies the
buyer's access token with PyJWT (same key, same algorithm allowlist and required claims), then
makes the same single Redis call with redis-py: ``EVALSHA`` of Agora's ``purchase.lua`` (with
``core/lua/ratelimit.lua`` embedded, as ``flashsale/ledger.py`` builds it) on the same keys and
arguments, spending the same three budgets and checking the same token epoch. It answers the
same 202 bytes. No middleware, no router of Agora's, no validation beyond reading ``quantity``,
no idempotency key, no worker nudge (Agora's is one thread hop per five seconds of a sale).

Configuration (Redis URL, secret key, rate limits) is read from Agora's settings, so that both
apps spend the same budgets on the same Redis.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import jwt
from limits import parse
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agora.settings import get_settings

SALE = "agora:flashsale:{{{}}}:"
RATE_LIMIT = "agora:ratelimit:{{{}}}"
EPOCH = "agora:token-epoch:"
DAY_S = 24 * 3600


def _script() -> bytes:
    """What Agora runs for a purchase: the budgets' script as a function, then the purchase."""
    budgets = resources.files("agora.core").joinpath("lua", "ratelimit.lua").read_bytes()
    purchase = resources.files("agora.flashsale").joinpath("lua", "purchase.lua").read_bytes()
    return b"local function spend_budgets(KEYS, ARGV)\n" + budgets + b"\nend\n" + purchase


def create_app() -> Starlette:
    """The app (an ASGI factory, like Agora's)."""
    settings = get_settings()
    secret = settings.secret_key.get_secret_value()
    source = _script()
    sha = hashlib.sha1(source, usedforsecurity=False).hexdigest()
    budgets = [
        ("default", parse(settings.rate_limit_default)),
        ("flash-sale-ip", parse(settings.rate_limit_flash_sale_ip)),
        ("flash-sale-buyer", parse(settings.rate_limit_flash_sale_buyer)),
    ]
    pool = BlockingConnectionPool.from_url(settings.redis_url or "", max_connections=256)
    redis = Redis.from_pool(pool)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await redis.script_load(source)
        yield
        await redis.aclose()

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def purchase(request: Request) -> JSONResponse:
        token = request.headers["authorization"].partition(" ")[2]
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience="agora-api",
            issuer="agora",
            options={"require": ["exp", "iat", "sub", "aud", "iss", "typ"]},
        )
        if claims["typ"] != "access":
            return JSONResponse({"code": "invalid_token"}, 401)
        buyer = claims["sub"]
        quantity = (await request.json())["quantity"]
        sale_id = request.path_params["sale_id"]
        ticket_id = str(uuid.uuid4())
        sale = SALE.format(sale_id)
        keys = [sale + "sale", sale + "buyers", sale + "queue", sale + f"ticket:{ticket_id}"]
        keys += [sale + f"idempotency:{buyer}:", sale + "wake", EPOCH + buyer]
        args: list[Any] = [buyer, quantity, ticket_id, "", DAY_S, DAY_S, 5000, b""]
        args.append(claims.get("epoch", 0))
        client = request.client.host if request.client else "unknown"
        for (name, item), identity in zip(budgets, (f"user:{buyer}", client, buyer), strict=True):
            current = RATE_LIMIT.format(item.key_for(name, identity))
            keys += [current + "/-1", current]
            args += [item.amount, item.get_expiry(), 1]
        outcome, detail, *_ = await redis.evalsha(sha, len(keys), *keys, *args)
        if outcome != b"accepted":
            return JSONResponse({"code": outcome.decode()}, 409)
        location = f"{request.url.path.removesuffix('/purchase')}/tickets/{detail.decode()}"
        return JSONResponse({"ticket_id": detail.decode()}, 202, headers={"Location": location})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/v1/flash-sales/{sale_id}/purchase", purchase, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
