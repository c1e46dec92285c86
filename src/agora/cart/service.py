"""Cart rules: who may see a cart, what may go in it, merging on login, claiming at checkout.

Prices are never stored in a cart: a cart is always shown at the variants' current prices, and
the order freezes them at checkout. Quantities are checked against the stock available when the
item is added (a courtesy to the buyer); the reservation at checkout is what actually decides.
Every change locks the cart row first, so concurrent edits of one cart apply one after another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from agora.cart import repository
from agora.cart.models import Cart, CartItem, CartStatus
from agora.catalog.models import ProductStatus
from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.core.money import Money
from agora.inventory import service as inventory

MAX_LINE_QUANTITY = 99


@dataclass(frozen=True)
class CartOwner:
    """Who asks for a cart: a signed-in user, the holder of a cart token, or both."""

    user_id: uuid.UUID | None = None
    token: str | None = None


@dataclass(frozen=True)
class PricedItem:
    """Units of a variant at a unit price, with what an order freezes of the variant; shared by
    cart lines and the lines an order is created from."""

    variant_id: uuid.UUID
    sku: str
    product_name: str
    quantity: int
    unit_price: Money
    weight_grams: int
    is_for_sale: bool

    @property
    def total(self) -> Money:
        """Unit price times quantity."""
        return Money(
            amount=self.unit_price.amount * self.quantity, currency=self.unit_price.currency
        )


@dataclass(frozen=True)
class CartLine(PricedItem):
    """A line of a cart at the variant's current price."""

    id: uuid.UUID


@dataclass(frozen=True)
class CartView:
    """A cart as the buyer sees it; ``token`` only when an anonymous cart was just created."""

    id: uuid.UUID
    status: CartStatus
    user_id: uuid.UUID | None
    lines: Sequence[CartLine]
    token: str | None = None
    is_new: bool = field(default=False, compare=False)

    @property
    def subtotal(self) -> Money | None:
        """The sum of the lines, or None for an empty cart."""
        if not self.lines:
            return None
        amount = sum(line.total.amount for line in self.lines)
        return Money(amount=amount, currency=self.lines[0].unit_price.currency)


def hash_token(token: str) -> str:
    """What is stored of a cart token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def open_cart(session: AsyncSession, owner: CartOwner) -> CartView:
    """The caller's cart: a user's active cart (created if needed, merging the anonymous cart
    whose token they send), the anonymous cart of the token sent, or a new anonymous cart with a
    fresh token."""
    if owner.user_id is None:
        if owner.token is not None:
            existing = await repository.cart_id_by_token(session, hash_token(owner.token))
            if existing is not None:
                return _view(await _load(session, existing))
        token = secrets.token_urlsafe(32)
        cart_id = await repository.create_anonymous_cart(session, hash_token(token))
        return CartView(cart_id, CartStatus.ACTIVE, None, [], token=token, is_new=True)
    cart_id, created = await repository.open_user_cart(session, owner.user_id)
    if owner.token is None:
        if created:  # nothing to load: a new cart is empty
            return CartView(cart_id, CartStatus.ACTIVE, owner.user_id, [], is_new=True)
        return _view(await _load(session, cart_id))
    cart = await _load(session, cart_id, for_update=True)
    await _merge_anonymous_cart(session, cart, owner.token)
    return _view(cart, is_new=created)


async def get_cart(session: AsyncSession, cart_id: uuid.UUID, owner: CartOwner) -> CartView:
    """A cart its owner may see; 404 for anyone else."""
    return _view(await _authorised(session, cart_id, owner))


async def add_item(
    session: AsyncSession,
    cart_id: uuid.UUID,
    owner: CartOwner,
    variant_id: uuid.UUID,
    quantity: int,
) -> tuple[CartView, uuid.UUID]:
    """Add units of a variant (to its line if there is one); the cart and the line's id.

    Read and written as plain rows (the locked cart with its lines, the variant with its
    available units, the line's upsert): no ORM objects are built for what is answered at once.
    """
    cart = _changeable(await repository.locked_cart(session, cart_id), owner)
    variant = await _buyable_variant(session, variant_id)
    currencies = {line.currency for line in cart.lines if line.variant_id != variant_id}
    if currencies and variant.currency not in currencies:
        raise ValidationFailed("A cart holds items of one currency only.", code="currency_mismatch")
    line = next((line for line in cart.lines if line.variant_id == variant_id), None)
    total = quantity + (line.quantity if line else 0)
    _check_quantity(total, variant.available)
    line_id = await repository.put_line(session, cart.id, variant_id, total)
    added = repository.LineRow(
        line_id,
        variant_id,
        total,
        variant.sku,
        variant.price_amount,
        variant.currency,
        variant.weight_grams,
        variant.product_name,
        variant.product_status,
    )
    rows = [added if row.variant_id == variant_id else row for row in cart.lines]
    if line is None:
        rows.append(added)
    lines = [_cart_line(row) for row in rows]
    return CartView(cart.id, cart.status, cart.user_id, lines), line_id


async def update_item(
    session: AsyncSession, cart_id: uuid.UUID, owner: CartOwner, item_id: uuid.UUID, quantity: int
) -> CartView:
    """Set the quantity of a line."""
    cart = await _authorised(session, cart_id, owner, for_update=True)
    item = _item(cart, item_id)
    available = await inventory.available_quantities(session, [item.variant_id])
    _check_quantity(quantity, available[item.variant_id])
    item.quantity = quantity
    await session.flush()
    return _view(cart)


async def remove_item(
    session: AsyncSession, cart_id: uuid.UUID, owner: CartOwner, item_id: uuid.UUID
) -> None:
    """Remove a line."""
    cart = await _authorised(session, cart_id, owner, for_update=True)
    cart.items.remove(_item(cart, item_id))
    await session.flush()


async def claim_for_checkout(
    session: AsyncSession, cart_id: uuid.UUID, user_id: uuid.UUID
) -> CartView:
    """Take a user's active cart for checkout (it stops being active); its lines, each saying
    whether its product is still on sale.

    404 if it is not the user's cart, 409 ``cart_not_active`` if it was already checked out
    (a concurrent checkout of the same cart waits for the first and then gets this).
    """
    rows = await repository.claim_with_lines(session, cart_id, user_id)
    if rows is None:
        cart = await repository.load_cart(session, cart_id)
        if cart is None or cart.user_id != user_id:
            raise NotFound("No such cart.", code="cart_not_found")
        raise Conflict("This cart was already checked out.", code="cart_not_active")
    lines = [_cart_line(row) for row in rows]
    if not lines:
        raise ValidationFailed("The cart is empty.", code="cart_empty")
    return CartView(cart_id, CartStatus.CHECKED_OUT, user_id, lines)


async def _merge_anonymous_cart(session: AsyncSession, cart: Cart, token: str) -> None:
    """Move the lines of the token's anonymous cart into ``cart`` (quantities add up, capped).

    The merged cart keeps the rules of ``add_item``: a line whose product is no longer on sale,
    or whose currency is not the cart's (the user's cart's, or the first merged line's when the
    user's cart is empty), is left out.
    """
    anonymous_id = await repository.cart_id_by_token(session, hash_token(token))
    if anonymous_id is None or anonymous_id == cart.id:
        return
    anonymous = await _load(session, anonymous_id, for_update=True)
    if anonymous.status != CartStatus.ACTIVE:
        return
    lines = {item.variant_id: item for item in cart.items}
    currency = next((item.variant.currency for item in cart.items), None)
    for source in anonymous.items:
        variant = source.variant
        if variant.product.status != ProductStatus.PUBLISHED:
            continue
        currency = currency or variant.currency
        if variant.currency != currency:
            continue
        target = lines.get(source.variant_id)
        if target is None:
            repository.add_item(session, cart, variant, min(source.quantity, MAX_LINE_QUANTITY))
        else:
            target.quantity = min(target.quantity + source.quantity, MAX_LINE_QUANTITY)
    await repository.set_status(session, anonymous.id, CartStatus.MERGED)
    await session.flush()


async def _load(session: AsyncSession, cart_id: uuid.UUID, *, for_update: bool = False) -> Cart:
    cart = await repository.load_cart(session, cart_id, for_update=for_update)
    if cart is None:
        raise NotFound("No such cart.", code="cart_not_found")
    return cart


async def _authorised(
    session: AsyncSession, cart_id: uuid.UUID, owner: CartOwner, *, for_update: bool = False
) -> Cart:
    """The cart if ``owner`` may see it (404 otherwise); active when it is to be changed."""
    cart = await repository.load_cart(session, cart_id, for_update=for_update)
    return _changeable(cart, owner) if for_update else _visible(cart, owner)


class _Owned(Protocol):
    @property
    def user_id(self) -> uuid.UUID | None: ...
    @property
    def token_hash(self) -> str | None: ...
    @property
    def status(self) -> CartStatus: ...


_C = TypeVar("_C", bound=_Owned)


def _visible(cart: _C | None, owner: CartOwner) -> _C:
    """``cart`` if ``owner`` may see it; 404 otherwise."""
    if cart is None or not _owns(cart, owner):
        raise NotFound("No such cart.", code="cart_not_found")
    return cart


def _changeable(cart: _C | None, owner: CartOwner) -> _C:
    """``cart`` if ``owner`` may change it: theirs (404 otherwise) and active (409)."""
    cart = _visible(cart, owner)
    if cart.status != CartStatus.ACTIVE:
        raise Conflict(
            f"This cart is {cart.status.value} and cannot change.", code="cart_not_active"
        )
    return cart


def _owns(cart: _Owned, owner: CartOwner) -> bool:
    if cart.user_id is not None:
        return cart.user_id == owner.user_id
    return (
        owner.token is not None
        and cart.token_hash is not None
        and hmac.compare_digest(cart.token_hash, hash_token(owner.token))
    )


def _item(cart: Cart, item_id: uuid.UUID) -> CartItem:
    item = next((item for item in cart.items if item.id == item_id), None)
    if item is None:
        raise NotFound("No such item in this cart.", code="cart_item_not_found")
    return item


async def _buyable_variant(session: AsyncSession, variant_id: uuid.UUID) -> inventory.VariantUnits:
    """A variant on sale with its available units, read together (422 if it is not on sale)."""
    found = await inventory.variant_units(session, variant_id)
    if found is None or found.product_status != ProductStatus.PUBLISHED:
        raise ValidationFailed("This variant is not for sale.", code="variant_unavailable")
    return found


def _check_quantity(quantity: int, available: int) -> None:
    if quantity > MAX_LINE_QUANTITY:
        raise ValidationFailed(
            f"At most {MAX_LINE_QUANTITY} units of an item per order.", code="quantity_limit"
        )
    if quantity > available:
        raise Conflict(
            f"Only {available} units are available.",
            code="insufficient_stock",
            available=available,
        )


def _view(cart: Cart, *, token: str | None = None, is_new: bool = False) -> CartView:
    lines = [_cart_line(repository.LineRow.of_item(item)) for item in cart.items]
    return CartView(cart.id, cart.status, cart.user_id, lines, token=token, is_new=is_new)


def _cart_line(row: repository.LineRow) -> CartLine:
    """A line read as a plain row, as the buyer sees it."""
    return CartLine(
        id=row.id,
        variant_id=row.variant_id,
        sku=row.sku,
        product_name=row.product_name,
        quantity=row.quantity,
        unit_price=Money(amount=row.price_amount, currency=row.currency),
        weight_grams=row.weight_grams,
        is_for_sale=row.product_status == ProductStatus.PUBLISHED,
    )
