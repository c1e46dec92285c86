"""Rows tests need, inserted directly through the models: users, published variants, stock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from agora.accounts.models import User
from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.inventory import service as inventory
from agora.settings import Settings


@dataclass(frozen=True)
class Account:
    """A user and the headers that authenticate as them."""

    id: uuid.UUID
    headers: dict[str, str]


async def create_user(
    database: Database, settings: Settings, role: Role = Role.CUSTOMER
) -> Account:
    """A user of ``role`` with a valid access token."""
    user_id = uuid.uuid4()
    async with database.unit_of_work() as session:
        session.add(
            User(id=user_id, email=f"{user_id.hex}@example.com", password_hash="x", role=role)
        )
    token = issue_access_token(settings, user_id, role)
    return Account(user_id, {"Authorization": f"Bearer {token}"})


async def create_users(
    database: Database, settings: Settings, count: int, role: Role = Role.CUSTOMER
) -> list[Account]:
    """``count`` users in one transaction."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with database.unit_of_work() as session:
        session.add_all(
            User(id=user_id, email=f"{user_id.hex}@example.com", password_hash="x", role=role)
            for user_id in ids
        )
    return [
        Account(user_id, {"Authorization": f"Bearer {issue_access_token(settings, user_id, role)}"})
        for user_id in ids
    ]


async def create_variant(
    database: Database,
    *,
    price: int = 1000,
    currency: str = "EUR",
    weight_grams: int = 0,
    stock: int | None = None,
    status: ProductStatus = ProductStatus.PUBLISHED,
) -> uuid.UUID:
    """A product with one variant; ``stock`` units in the default warehouse when given."""
    product_id, variant_id = uuid.uuid4(), uuid.uuid4()
    async with database.unit_of_work() as session:
        session.add(
            Product(
                id=product_id,
                name=f"Product {product_id.hex[:6]}",
                slug=product_id.hex,
                status=status,
            )
        )
        await session.flush()
        session.add(
            ProductVariant(
                id=variant_id,
                product_id=product_id,
                sku=variant_id.hex[:12],
                price_amount=price,
                currency=currency,
                weight_grams=weight_grams,
                attributes={},
            )
        )
    if stock is not None:
        await set_stock(database, variant_id, stock)
    return variant_id


async def set_stock(database: Database, variant_id: uuid.UUID, quantity: int) -> None:
    """Units on hand of a variant in the default warehouse."""
    async with database.unit_of_work() as session:
        await inventory.set_stock(session, variant_id, quantity)


async def stock_of(database: Database, variant_id: uuid.UUID) -> inventory.VariantStock:
    """The stock levels of a variant as they are committed now."""
    async with database.unit_of_work() as session:
        return await inventory.variant_stock(session, variant_id)
