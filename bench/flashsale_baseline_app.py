"""The baseline of the flash-sale benchmark: a purchase decided by a PostgreSQL row lock.

``POST /purchase/{buyer}`` opens a transaction, locks the one stock row (``SELECT … FOR
UPDATE``), refuses when it is empty or the buyer already bought, else decrements it and records
the purchase: how a flash sale is usually written, and what Redis replaces. The database is named
by ``BASELINE_DATABASE_URL`` (an asyncpg DSN).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_flash_stock (id int PRIMARY KEY, remaining int NOT NULL);
CREATE TABLE IF NOT EXISTS baseline_flash_purchases (buyer text PRIMARY KEY);
"""
# The purchase's statements, in order (asyncpg placeholders); the row-lock route served inside
# Agora's stack (``bench.flashsale_rowlock_in_agora``) runs the same ones.
LOCK_STOCK = "SELECT remaining FROM baseline_flash_stock WHERE id = 1 FOR UPDATE"
ALREADY_BOUGHT = "SELECT 1 FROM baseline_flash_purchases WHERE buyer = $1"
TAKE_ONE = "UPDATE baseline_flash_stock SET remaining = remaining - 1 WHERE id = 1"
RECORD_PURCHASE = "INSERT INTO baseline_flash_purchases VALUES ($1)"
UNITS_SOLD = "SELECT count(*) FROM baseline_flash_purchases"


async def reset(connection: asyncpg.Connection, units: int) -> None:
    """Empty the purchases and put ``units`` in the stock row."""
    await connection.execute(SCHEMA)
    await connection.execute("TRUNCATE baseline_flash_purchases")
    await connection.execute(
        "INSERT INTO baseline_flash_stock VALUES (1, $1) "
        "ON CONFLICT (id) DO UPDATE SET remaining = $1",
        units,
    )


async def healthz(_: Request) -> JSONResponse:
    """Liveness, for the harness."""
    return JSONResponse({"status": "ok"})


async def purchase(request: Request) -> JSONResponse:
    """One unit for the buyer, decided under the stock row's lock."""
    buyer = request.path_params["buyer"]
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as connection, connection.transaction():
        remaining = await connection.fetchval(LOCK_STOCK)
        if remaining <= 0:
            return JSONResponse({"code": "sold_out"}, 409)
        if await connection.fetchval(ALREADY_BOUGHT, buyer):
            return JSONResponse({"code": "limit_reached"}, 409)
        await connection.execute(TAKE_ONE)
        await connection.execute(RECORD_PURCHASE, buyer)
    return JSONResponse({"ticket_id": buyer}, 202)


def create_app() -> Starlette:
    """The baseline app (an ASGI factory)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            os.environ["BASELINE_DATABASE_URL"], min_size=5, max_size=20
        )
        yield
        await app.state.pool.close()

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/purchase/{buyer}", purchase, methods=["POST"])],
        lifespan=lifespan,
    )
