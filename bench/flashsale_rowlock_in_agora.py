"""The flash-sale baseline's row-lock purchase, served inside Agora's own stack.

``create_app()`` is Agora's app (``agora.app.create_app``: its middleware, error handlers,
services and lifespan) with one more route, ``POST /api/v1/bench/rowlock-purchase``. It
authorises the caller like the real purchase (``CurrentPrincipal``), parses the same body, spends
the same three rate-limit budgets in the same single Redis call, then decides the purchase the
way ``bench.flashsale_baseline_app`` does: in the request's unit of work, ``SELECT … FOR UPDATE``
on the baseline's stock row, the per-buyer limit checked in SQL, a decrement and a purchase row;
202, or 409 ``sold_out`` / ``limit_reached`` as a problem response. Set against Agora's Redis Lua
purchase, the only difference left is who decides: Redis or a PostgreSQL row lock.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from agora.app import API_PREFIX
from agora.app import create_app as create_agora_app
from agora.core.dependencies import ServicesDep, SessionDep
from agora.core.errors import Conflict
from agora.core.ratelimit import DefaultBudgetMiddleware
from agora.core.security import CurrentPrincipal
from agora.flashsale.direct_purchase import purchase_budgets
from agora.flashsale.schemas import PurchaseRequest
from bench.flashsale_baseline_app import ALREADY_BOUGHT, LOCK_STOCK, RECORD_PURCHASE, TAKE_ONE

PATH = "/bench/rowlock-purchase"
PER_BUYER_LIMIT = 1
router = APIRouter()


@router.post(PATH, status_code=status.HTTP_202_ACCEPTED)
async def rowlock_purchase(
    body: PurchaseRequest,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: SessionDep,
) -> dict[str, str]:
    """One unit for the caller, decided under the stock row's lock."""
    await services.rate_limiter.spend(purchase_budgets(services, request, principal))
    buyer = str(principal.user_id)
    if body.quantity > PER_BUYER_LIMIT:
        raise Conflict("More units than a buyer may buy.", code="limit_reached")
    await _take_one(session, buyer)
    return {"ticket_id": buyer}


async def _take_one(session: AsyncSession, buyer: str) -> None:
    """Lock the stock row, refuse when it is empty or the buyer already bought, else take a unit.

    A refusal raises, so the request's unit of work rolls back and releases the lock."""
    connection = await session.connection()
    remaining = (await connection.exec_driver_sql(LOCK_STOCK)).scalar_one()
    if remaining <= 0:
        raise Conflict("The sale is sold out.", code="sold_out")
    if (await connection.exec_driver_sql(ALREADY_BOUGHT, (buyer,))).first() is not None:
        raise Conflict("The buyer already bought.", code="limit_reached")
    await connection.exec_driver_sql(TAKE_ONE)
    await connection.exec_driver_sql(RECORD_PURCHASE, (buyer,))


def create_app() -> FastAPI:
    """Agora's app with the row-lock purchase route (an ASGI factory)."""
    app = create_agora_app()
    app.include_router(router, prefix=API_PREFIX)
    # Like the real purchase path, this route spends the default budget itself (above), so the
    # middleware must not spend it a second time.
    for middleware in app.user_middleware:
        if middleware.cls is DefaultBudgetMiddleware:
            metered = middleware.kwargs["self_metered_paths"]
            middleware.kwargs["self_metered_paths"] = (*metered, API_PREFIX + PATH)
    return app
