"""Every query on the cart tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from asyncpg import Record
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, load_only

from agora.cart.models import Cart, CartItem, CartStatus
from agora.catalog.models import Product, ProductStatus, ProductVariant
from agora.core.driver import DriverStatement

# What a cart line shows of its product: its name and whether it is on sale, not the search
# vector, description and images a full product row carries.
_PRODUCT_FIELDS = load_only(Product.id, Product.name, Product.status)
_WITH_ITEMS = (
    joinedload(Cart.items)
    .joinedload(CartItem.variant)
    .joinedload(ProductVariant.product)
    .options(_PRODUCT_FIELDS)
)


async def load_cart(
    session: AsyncSession, cart_id: uuid.UUID, *, for_update: bool = False
) -> Cart | None:
    """A cart with its items, their variants and products, in one query; locked when
    ``for_update``.

    Locking the cart row serialises every change to one cart, checkout included.
    """
    statement = (
        select(Cart)
        .where(Cart.id == cart_id)
        .options(_WITH_ITEMS)
        .execution_options(populate_existing=True)
    )
    if for_update:
        statement = statement.with_for_update(of=Cart)
    result = await session.execute(statement)
    return result.unique().scalar_one_or_none()


@dataclass(frozen=True)
class LineRow:
    """A cart line as checkout reads it: the line, its variant and its product, flat."""

    id: uuid.UUID
    variant_id: uuid.UUID
    quantity: int
    sku: str
    price_amount: int
    currency: str
    weight_grams: int
    product_name: str
    product_status: ProductStatus


_LINE_COLUMNS = (
    CartItem.id,
    CartItem.variant_id,
    CartItem.quantity,
    ProductVariant.sku,
    ProductVariant.price_amount,
    ProductVariant.currency,
    ProductVariant.weight_grams,
    Product.name,
    Product.status,
)


# Checkout's claim of a user's active cart and the read of its lines, in one statement sent
# straight to the driver (core/driver.py): no row when the cart was not claimed, one row with
# no line when it is empty.
_claimed = (
    update(Cart)
    .where(
        Cart.id == bindparam("cart_id"),
        Cart.user_id == bindparam("user_id"),
        Cart.status == CartStatus.ACTIVE,
    )
    .values(status=CartStatus.CHECKED_OUT)
    .returning(Cart.id)
    .cte("claimed")
)
_CLAIM = DriverStatement(
    select(_claimed.c.id.label("cart_id"), *_LINE_COLUMNS)
    .select_from(_claimed)
    .outerjoin(CartItem, CartItem.cart_id == _claimed.c.id)
    .outerjoin(ProductVariant, ProductVariant.id == CartItem.variant_id)
    .outerjoin(Product, Product.id == ProductVariant.product_id)
    .order_by(CartItem.created_at)
)


async def claim_with_lines(
    session: AsyncSession, cart_id: uuid.UUID, user_id: uuid.UUID
) -> list[LineRow] | None:
    """Move a user's active cart to checked out and read its lines with their variants and
    products, oldest first, as plain rows; None if it is not the user's active cart.

    Of two concurrent checkouts of one cart, one claims it and the other finds it gone.
    """
    rows = await _CLAIM.fetch(session, cart_id=cart_id, user_id=user_id)
    if not rows:
        return None
    return [_line(row) for row in rows if row["id"] is not None]


def _line(row: Record) -> LineRow:
    return LineRow(
        id=row["id"],
        variant_id=row["variant_id"],
        quantity=row["quantity"],
        sku=row["sku"],
        price_amount=row["price_amount"],
        currency=row["currency"],
        weight_grams=row["weight_grams"],
        product_name=row["name"],
        product_status=ProductStatus(row["status"]),
    )


async def active_cart_id_of_user(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    """The user's active cart, if any."""
    return await session.scalar(
        select(Cart.id).where(Cart.user_id == user_id, Cart.status == CartStatus.ACTIVE)
    )


async def open_user_cart(session: AsyncSession, user_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
    """The user's active cart, created if missing; and whether it was created just now."""
    created = await session.scalar(
        insert(Cart)
        .values(id=uuid.uuid4(), user_id=user_id, status=CartStatus.ACTIVE)
        .on_conflict_do_nothing()
        .returning(Cart.id)
    )
    if created is not None:
        return created, True
    existing = await active_cart_id_of_user(session, user_id)
    assert existing is not None, "the conflicting active cart exists"
    return existing, False


async def create_anonymous_cart(session: AsyncSession, token_hash: str) -> uuid.UUID:
    """A new cart owned by whoever holds the token hashed as ``token_hash``."""
    cart = Cart(token_hash=token_hash, status=CartStatus.ACTIVE)
    session.add(cart)
    await session.flush()
    return cart.id


async def cart_id_by_token(session: AsyncSession, token_hash: str) -> uuid.UUID | None:
    """The active anonymous cart of a token."""
    return await session.scalar(
        select(Cart.id).where(Cart.token_hash == token_hash, Cart.status == CartStatus.ACTIVE)
    )


# How a variant put in a cart is loaded: with its product's name and status.
WITH_PRODUCT = joinedload(ProductVariant.product).options(_PRODUCT_FIELDS)


def add_item(session: AsyncSession, cart: Cart, variant: ProductVariant, quantity: int) -> CartItem:
    """A new line in a (locked) cart."""
    item = CartItem(cart_id=cart.id, variant_id=variant.id, quantity=quantity, variant=variant)
    cart.items.append(item)
    return item


async def set_status(
    session: AsyncSession,
    cart_id: uuid.UUID,
    status: CartStatus,
    *,
    user_id: uuid.UUID | None = None,
) -> bool:
    """Move an active cart (of ``user_id`` when given) to ``status``; False if it is not active.

    Checkout claims a cart this way: of two concurrent checkouts, one wins and one finds it gone.
    """
    statement = update(Cart).where(Cart.id == cart_id, Cart.status == CartStatus.ACTIVE)
    if user_id is not None:
        statement = statement.where(Cart.user_id == user_id)
    claimed = await session.scalar(
        statement.values(status=status)
        .returning(Cart.id)
        .execution_options(synchronize_session=False)
    )
    return claimed is not None
