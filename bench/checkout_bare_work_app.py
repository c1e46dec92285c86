"""The checkout's floor over HTTP: its SQL, token check and budget call, with no framework.

A bare Starlette app, served as ``agora api`` serves Agora, answering the three requests of a
checkout (open the cart, add the item, place the order) with only the work none of them can
skip: the buyer's access token verified (Agora's ``decode_access_token``, cached per token as in
Agora), the default budget spent and the token's epoch checked in one Redis call (Agora's
packed ``BudgetCall``), the request's own statements, recorded from Agora, sent over asyncpg in
the same transaction as Agora sends them (``bench/checkout_baseline.py`` renames the ids the
checkout creates), and a JSON answer. No middleware, no validation beyond reading the ids the
statements need, no ORM or session, no after-commit work (Agora publishes the stock change and
nudges the outbox relay). The order's answer is the stored one the recorded statements write;
its key row is written under a fresh key, as the replay writes it.

``bench/checkout.py`` runs it beside Agora: what the stack costs a checkout before any of
Agora's own layers. The recording is read from the pickle named by ``BENCH_CHECKOUT_RECORDING``.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agora.core.ratelimit import BudgetCall, RateLimiter, client_identity, default_budget
from agora.core.redis import create_redis
from agora.core.security import decode_access_token
from agora.settings import Settings, get_settings
from bench.checkout_baseline import Recording, Renamer, Sent, Transaction, send_transaction
from bench.harness import asyncpg_url

RECORDING_VARIABLE = "BENCH_CHECKOUT_RECORDING"
ACTIVE_CART = "SELECT id FROM carts WHERE user_id = $1 AND status = 'active'"


class Floor:
    """The recording, the connections and the budget each request is answered with."""

    def __init__(self, settings: Settings, recording: Recording) -> None:
        self.settings = settings
        self.recording = recording
        opening, adding, placing = recording.transactions
        self.opening, self.adding, self.placing = opening, adding, placing
        self.cart_id: uuid.UUID = opening[0].parameters[0]  # the id the cart was opened with
        self.limit = default_budget(settings)
        self.calls: dict[tuple[uuid.UUID, int], BudgetCall] = {}  # packed once, as in Agora
        self.pool: asyncpg.Pool | None = None
        self.limiter: RateLimiter | None = None

    async def start(self) -> None:
        """Open the connections."""
        dsn = asyncpg_url(self.settings.database_url or "")
        size = self.settings.database_pool_size  # as Agora's pool
        self.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
        self.limiter = RateLimiter(create_redis(self.settings.redis_url or "", self.settings))

    async def stop(self) -> None:
        """Close them."""
        if self.pool is not None:
            await self.pool.close()

    async def buyer(self, request: Request) -> uuid.UUID:
        """The signed-in buyer, once the token is verified and the budget spent."""
        token = request.headers["authorization"].partition(" ")[2]
        principal = decode_access_token(self.settings, token)
        assert self.limiter is not None
        key = (principal.user_id, principal.token_epoch)
        call = self.calls.get(key)
        if call is None:
            spends = [(self.limit, client_identity(request, principal))]
            call = self.calls[key] = BudgetCall.of(spends, principal=principal)
        await self.limiter.spend(call, fail_open=True)
        return principal.user_id

    async def send(self, transaction: Transaction, renamer: Renamer) -> list[Sent]:
        """One request's statements, on a pooled connection."""
        assert self.pool is not None
        async with self.pool.acquire() as connection:
            return await send_transaction(connection, transaction, renamer)

    async def open_cart(self, request: Request) -> Response:
        """A new cart for the buyer (201), or the one a checkout cut short left open (200)."""
        buyer = await self.buyer(request)
        renamer = Renamer(self.recording, buyer)
        (opened,) = await self.send(self.opening, renamer)
        if opened.rows:
            cart_id, status = str(renamer.ids[self.cart_id]), 201
        else:
            cart_id, status = str(await self._active_cart(buyer)), 200
        body: dict[str, object] = {
            "id": cart_id,
            "status": "active",
            "items": [],
            "subtotal": None,
            "token": None,
        }
        headers = {"Location": f"/api/v1/carts/{cart_id}"}
        return Response(orjson.dumps(body), status, headers, media_type="application/json")

    async def _active_cart(self, buyer: uuid.UUID) -> uuid.UUID:
        assert self.pool is not None
        cart_id: uuid.UUID = await self.pool.fetchval(ACTIVE_CART, buyer)
        return cart_id

    async def add_item(self, request: Request) -> Response:
        """The item added to the buyer's cart; the cart with its line."""
        renamer = Renamer(self.recording, await self.buyer(request))
        item = orjson.loads(await request.body())
        cart_id = request.path_params["cart_id"]
        renamer.add(self.cart_id, uuid.UUID(cart_id))
        _, (variant,), (line,) = [sent.rows for sent in await self.send(self.adding, renamer)]
        price = {"amount": variant["price_amount"], "currency": variant["currency"]}
        body: dict[str, object] = {
            "id": cart_id,
            "status": "active",
            "items": [
                {
                    "id": str(line["id"]),
                    "variant_id": item["variant_id"],
                    "sku": variant["sku"],
                    "product_name": variant["product_name"],
                    "quantity": item["quantity"],
                    "unit_price": price,
                }
            ],
            "subtotal": price,
            "token": None,
        }
        headers = {"Location": f"/api/v1/carts/{cart_id}/items/{line['id']}"}
        return Response(orjson.dumps(body), 201, headers, media_type="application/json")

    async def place_order(self, request: Request) -> Response:
        """The buyer's cart turned into an order; the answer the statements stored."""
        renamer = Renamer(self.recording, await self.buyer(request))
        order = orjson.loads(await request.body())
        renamer.add(self.cart_id, uuid.UUID(order["cart_id"]))
        stored = (await self.send(self.placing, renamer))[-1].parameters
        status, headers, body = stored[3], orjson.loads(stored[4]), stored[5]
        return Response(body, status, headers, media_type="application/json")


def create_app() -> Starlette:
    """The app (an ASGI factory, like Agora's)."""
    recording = pickle.loads(Path(os.environ[RECORDING_VARIABLE]).read_bytes())  # noqa: S301
    floor = Floor(get_settings(), recording)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await floor.start()
        yield
        await floor.stop()

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/v1/carts", floor.open_cart, methods=["POST"]),
            Route("/api/v1/carts/{cart_id}/items", floor.add_item, methods=["POST"]),
            Route("/api/v1/orders", floor.place_order, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
