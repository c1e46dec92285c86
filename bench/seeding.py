"""Data the benchmarks seed directly in the database, shared so each shape is written once.

Benchmarks never import the test suite, so the seeding they need lives here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.db import Database
from agora.core.embedded import ServiceUrls
from agora.core.redis import create_redis
from agora.inventory import service as inventory
from agora.settings import get_settings


@contextlib.asynccontextmanager
async def connected(urls: ServiceUrls) -> AsyncIterator[tuple[Database, Redis]]:
    """The benchmark database (one connection) and Redis, to seed through; closed afterwards."""
    database = Database(urls.database_url, pool_size=2)
    redis = create_redis(urls.redis_url, get_settings())
    try:
        yield database, redis
    finally:
        await redis.aclose()
        await database.dispose()


async def published_variant(
    session: AsyncSession, redis: Redis, name: str, stock: int
) -> uuid.UUID:
    """A variant (EUR 19.99) of a new published product called ``name``, with ``stock`` units
    in the default warehouse, added in the caller's unit of work."""
    product_id, variant_id = uuid.uuid4(), uuid.uuid4()
    session.add(
        Product(
            id=product_id,
            name=name,
            slug=f"bench-{product_id.hex}",
            status=ProductStatus.PUBLISHED,
        )
    )
    await session.flush()
    session.add(
        ProductVariant(
            id=variant_id,
            product_id=product_id,
            sku=f"bench-{variant_id.hex[:12]}",
            price_amount=1999,
            currency="EUR",
            attributes={},
        )
    )
    await session.flush()
    await inventory.set_stock(session, variant_id, stock, redis=redis)
    return variant_id
