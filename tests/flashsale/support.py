"""Steps shared by the flash-sale tests: a published variant in stock, buyers, a sale, a server."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, insert, select

from agora.accounts.models import User
from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.flashsale.models import FlashSaleTicket
from agora.inventory import service as inventory
from agora.orders.models import Order, OrderLine, OrderStatus
from agora.settings import Settings
from tests.support import ApiProcess

API = "/api/v1"
PRICE = {"amount": 1999, "currency": "EUR"}
SALE_PRICE = {"amount": 999, "currency": "EUR"}


async def published_variant(database: Database, redis: Redis, stock: int) -> uuid.UUID:
    """A variant of a published product with ``stock`` units in the default warehouse."""
    product_id, variant_id = uuid.uuid4(), uuid.uuid4()
    async with database.unit_of_work() as session:
        session.add(
            Product(
                id=product_id,
                name="Limited sneaker",
                slug=f"sneaker-{product_id.hex[:8]}",
                status=ProductStatus.PUBLISHED,
            )
        )
        await session.flush()
        session.add(
            ProductVariant(
                id=variant_id,
                product_id=product_id,
                sku=f"SNK-{variant_id.hex[:8]}",
                price_amount=PRICE["amount"],
                currency=PRICE["currency"],
            )
        )
        await session.flush()
        await inventory.set_stock(session, variant_id, stock, redis=redis)
    return variant_id


async def buyers(database: Database, settings: Settings, count: int) -> list[dict[str, str]]:
    """``count`` customer accounts; the bearer header of each."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with database.unit_of_work() as session:
        await session.execute(
            insert(User),
            [
                {"id": user_id, "email": f"{user_id.hex}@example.com", "password_hash": "-"}
                for user_id in ids
            ],
        )
    return [bearer(settings, user_id, Role.CUSTOMER) for user_id in ids]


def bearer(settings: Settings, user_id: uuid.UUID, role: Role) -> dict[str, str]:
    """The Authorization header of a token for ``user_id``."""
    return {"Authorization": f"Bearer {issue_access_token(settings, user_id, role)}"}


async def staff(database: Database, settings: Settings) -> dict[str, str]:
    """The bearer header of a member of staff."""
    user_id = uuid.uuid4()
    async with database.unit_of_work() as session:
        session.add(User(id=user_id, email=f"staff-{user_id.hex}@example.com", password_hash="-"))
    return bearer(settings, user_id, Role.STAFF)


def sale_body(variant_id: uuid.UUID, quantity: int, **overrides: Any) -> dict[str, Any]:
    """A sale that started a second ago and lasts an hour."""
    now = dt.datetime.now(dt.UTC)
    body: dict[str, Any] = {
        "variant_id": str(variant_id),
        "price": SALE_PRICE,
        "quantity": quantity,
        "starts_at": (now - dt.timedelta(seconds=1)).isoformat(),
        "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
        "per_user_limit": 1,
    }
    body.update(overrides)
    return body


async def create_sale(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """Schedule a sale through the API and return it."""
    response = await client.post(f"{API}/flash-sales", json=body, headers=headers)
    assert response.status_code == 201, response.text
    sale: dict[str, Any] = response.json()
    return sale


async def sale_and_buyers(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    *,
    quantity: int,
    buyer_count: int = 1,
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, str]]:
    """A running sale of ``quantity`` units (of a variant with 10 in stock), its buyers' bearer
    headers, and the staff headers that scheduled it."""
    variant_id = await published_variant(database, redis, stock=10)
    staff_headers = await staff(database, settings)
    sale = await create_sale(client, staff_headers, sale_body(variant_id, quantity))
    return sale, await buyers(database, settings, buyer_count), staff_headers


async def units_per_buyer_in_live_orders(database: Database, sale_id: str) -> dict[uuid.UUID, int]:
    """Units of the sale's orders not cancelled, per buyer."""
    async with database.unit_of_work() as session:
        rows = await session.execute(
            select(Order.user_id, func.sum(OrderLine.quantity))
            .join(OrderLine, OrderLine.order_id == Order.id)
            .join(FlashSaleTicket, FlashSaleTicket.order_id == Order.id)
            .where(
                FlashSaleTicket.sale_id == uuid.UUID(sale_id),
                Order.status != OrderStatus.CANCELLED,
            )
            .group_by(Order.user_id)
        )
        return {buyer: int(units) for buyer, units in rows}


@contextlib.contextmanager
def api_server(env: dict[str, str], **settings: str) -> Iterator[str]:
    """A real ``agora api`` process on a free port, stopped on leaving; yields its base URL."""
    server = ApiProcess(
        env={**env, **{f"AGORA_{name.upper()}": value for name, value in settings.items()}}
    )
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()
