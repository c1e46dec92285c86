"""Every query on the cart tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields

from asyncpg import Record
from sqlalchemy import bindparam, func, select, update
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

    @classmethod
    def of_item(cls, item: CartItem) -> LineRow:
        """A line loaded through the ORM (with its variant and product), flat."""
        variant = item.variant
        return cls(
            item.id,
            item.variant_id,
            item.quantity,
            variant.sku,
            variant.price_amount,
            variant.currency,
            variant.weight_grams,
            variant.product.name,
            variant.product.status,
        )


_LINE_COLUMNS = (
    CartItem.id,
    CartItem.variant_id,
    CartItem.quantity,
    ProductVariant.sku,
    ProductVariant.price_amount,
    ProductVariant.currency,
    ProductVariant.weight_grams,
    Product.name.label("product_name"),
    Product.status.label("product_status"),
)
_LINE_FIELDS = [field.name for field in fields(LineRow)]


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
    values = {name: row[name] for name in _LINE_FIELDS}
    return LineRow(**{**values, "product_status": ProductStatus(values["product_status"])})


@dataclass(frozen=True)
class LockedCart:
    """A cart row, locked, with its lines as plain rows (oldest first)."""

    id: uuid.UUID
    user_id: uuid.UUID | None
    token_hash: str | None
    status: CartStatus
    lines: list[LineRow]


# Adding an item: the cart locked with its lines, and the line written, each one statement
# built once and sent straight to the driver (core/driver.py).
_LOCKED = DriverStatement(
    select(
        Cart.id.label("cart_id"),
        Cart.user_id.label("cart_user_id"),
        Cart.token_hash.label("cart_token_hash"),
        Cart.status.label("cart_status"),
        *_LINE_COLUMNS,
    )
    .outerjoin(CartItem, CartItem.cart_id == Cart.id)
    .outerjoin(ProductVariant, ProductVariant.id == CartItem.variant_id)
    .outerjoin(Product, Product.id == ProductVariant.product_id)
    .where(Cart.id == bindparam("cart_id"))
    .order_by(CartItem.created_at)
    .with_for_update(of=Cart)
)
_line_insert = insert(CartItem).values(
    id=bindparam("id"),
    cart_id=bindparam("cart_id"),
    variant_id=bindparam("variant_id"),
    quantity=bindparam("quantity"),
)
_PUT_LINE = DriverStatement(
    _line_insert.on_conflict_do_update(
        index_elements=[CartItem.cart_id, CartItem.variant_id],
        set_={"quantity": _line_insert.excluded.quantity, "updated_at": func.now()},
    ).returning(CartItem.id)
)


async def locked_cart(session: AsyncSession, cart_id: uuid.UUID) -> LockedCart | None:
    """A cart locked with its lines, their variants and products, in one query; None for an
    unknown cart. Locking the cart row serialises every change to one cart, checkout included."""
    rows = await _LOCKED.fetch(session, cart_id=cart_id)
    if not rows:
        return None
    head = rows[0]
    lines = [_line(row) for row in rows if row["id"] is not None]
    return LockedCart(
        head["cart_id"],
        head["cart_user_id"],
        head["cart_token_hash"],
        CartStatus(head["cart_status"]),
        lines,
    )


async def put_line(
    session: AsyncSession, cart_id: uuid.UUID, variant_id: uuid.UUID, quantity: int
) -> uuid.UUID:
    """Set the quantity of a (locked) cart's line of a variant, adding the line if there is
    none; the line's id."""
    row = await _PUT_LINE.fetchrow(
        session, id=uuid.uuid4(), cart_id=cart_id, variant_id=variant_id, quantity=quantity
    )
    assert row is not None, "an upsert … RETURNING returns its row"
    line_id: uuid.UUID = row[0]
    return line_id


async def active_cart_id_of_user(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    """The user's active cart, if any."""
    return await session.scalar(
        select(Cart.id).where(Cart.user_id == user_id, Cart.status == CartStatus.ACTIVE)
    )


# Every signed-in buyer's checkout opens the cart: built once, sent straight to the driver.
_OPEN_USER_CART = DriverStatement(
    insert(Cart)
    .values(id=bindparam("id"), user_id=bindparam("user_id"), status=CartStatus.ACTIVE)
    .on_conflict_do_nothing()
    .returning(Cart.id)
)


async def open_user_cart(session: AsyncSession, user_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
    """The user's active cart, created if missing; and whether it was created just now.

    The upsert stands on its own (a user has an active cart), so a request that only opens the
    cart sends it without BEGIN and COMMIT; one that goes on (a merge) begins after it."""
    created = await _OPEN_USER_CART.fetchrow_unbegun(session, id=uuid.uuid4(), user_id=user_id)
    if created is not None:
        cart_id: uuid.UUID = created[0]
        return cart_id, True
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
