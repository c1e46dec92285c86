"""Order rules: checkout, the state machine, auto-cancel of unpaid orders.

Checkout claims the cart, counts the voucher's use, writes the order with its frozen prices and
totals and reserves the stock, all in the caller's transaction: it happens entirely or not at all.
Row locks are always taken in one order (order row, voucher, stock rows by primary key), so
checkouts, payments and cancellations never deadlock; the stock rows, which every buyer of a
popular item contends for, are locked last so they are held only until the commit that follows.

The state machine (``TRANSITIONS``) is enforced by one conditional UPDATE per move
(``… WHERE status IN (legal sources)``), so two concurrent moves of one order cannot both win:
the loser gets 409 ``order_state_conflict``. Each move's side effects (stock allocated, shipped or
released, voucher use given back, an outbox event) run only when the move happened, which makes
``mark_paid`` and the cancel functions safe to call twice.

An unpaid order is cancelled once its payment deadline (``payment_due_at``, in PostgreSQL) has
passed by the periodic sweep (beat, every ``AGORA_ORDER_EXPIRY_SWEEP_INTERVAL`` seconds): no task
waits in the broker for the deadline, so neither a broker outage at checkout nor RabbitMQ's
``consumer_timeout`` can lose or stall an expiry. ``expire_order`` only cancels an order that is
due and unpaid, so a sweep that runs twice, or races a payment, is harmless.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from agora.cart import service as cart
from agora.catalog.models import ProductStatus
from agora.core.db import Database, utcnow
from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.core.jobs import defer
from agora.core.money import Money
from agora.core.outbox import record_event
from agora.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from agora.inventory import pickup
from agora.inventory import service as inventory
from agora.inventory.pickup import PICKUP_METHOD
from agora.orders import pricing, repository
from agora.orders.drafts import NewOrder, NewOrderLine
from agora.orders.models import Order, OrderStatus
from agora.orders.repository import OrderFilter

EXPIRE_OVERDUE_ORDERS_TASK = "agora.orders.expire_overdue"
# Published after an order is cancelled, for the modules that act on it (payments closes the
# order's open payment at its provider); orders knows them only by this name.
ORDER_CANCELLED_TASK = "agora.orders.cancelled"
PAYMENT_TIMEOUT_REASON = "payment_timeout"
SWEEP_BATCH = 500
_NEWEST = "newest"  # the one order of order lists

_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_PAYMENT: frozenset({_S.PAID, _S.CANCELLED}),
    _S.PAID: frozenset({_S.FULFILLED, _S.REFUNDED}),
    _S.FULFILLED: frozenset({_S.SHIPPED, _S.REFUNDED}),
    _S.SHIPPED: frozenset({_S.COMPLETED, _S.REFUNDED}),
    _S.COMPLETED: frozenset({_S.REFUNDED}),
    _S.CANCELLED: frozenset(),
    _S.REFUNDED: frozenset(),
}
_PAID_OR_LATER = frozenset({_S.PAID, _S.FULFILLED, _S.SHIPPED, _S.COMPLETED, _S.REFUNDED})
_NOT_SHIPPED = frozenset({_S.PENDING_PAYMENT, _S.PAID, _S.FULFILLED})


@dataclass(frozen=True)
class LineRequest:
    """A line to order: a variant, how many, and its unit price (the current one when None)."""

    variant_id: uuid.UUID
    quantity: int
    unit_price: Money | None = None


@dataclass(frozen=True)
class Checkout:
    """Where to ship (None until the buyer says: a flash-sale ticket), how, and the voucher."""

    shipping_address: dict[str, Any] | None
    shipping_method: str | None = None
    voucher_code: str | None = None
    pickup_point_id: uuid.UUID | None = None


async def place_order(
    session: AsyncSession,
    user_id: uuid.UUID,
    cart_id: uuid.UUID,
    checkout: Checkout,
    *,
    payment_timeout: int,
    redis: Redis,
) -> Order | NewOrder:
    """Turn a user's cart into an order awaiting payment, with its stock reserved.

    404 for a cart that is not theirs, 409 ``cart_not_active`` or ``out_of_stock``, 422 for an
    empty cart or a bad voucher or shipping method.
    """
    claimed = await cart.claim_for_checkout(session, cart_id, user_id)
    return await _create(
        session, user_id, claimed.lines, checkout, payment_timeout=payment_timeout, redis=redis
    )


async def create_order(
    session: AsyncSession,
    user_id: uuid.UUID,
    lines: Sequence[LineRequest],
    checkout: Checkout,
    *,
    payment_timeout: int,
    redis: Redis,
) -> Order | NewOrder:
    """Create an order from explicit lines (flash-sale tickets): prices frozen, stock reserved,
    voucher counted, totals computed, an ``order.created`` event. All or nothing: any error
    leaves the caller's transaction to roll back."""
    variants = await repository.variants_with_products(session, {line.variant_id for line in lines})
    items = []
    for line in lines:
        variant = variants.get(line.variant_id)
        if variant is None:
            raise _unavailable(line.variant_id)
        price = line.unit_price or Money(amount=variant.price_amount, currency=variant.currency)
        items.append(
            cart.PricedItem(
                variant_id=variant.id,
                sku=variant.sku,
                product_name=variant.product.name,
                quantity=line.quantity,
                unit_price=price,
                weight_grams=variant.weight_grams,
                is_for_sale=variant.product.status == ProductStatus.PUBLISHED,
            )
        )
    return await _create(
        session, user_id, items, checkout, payment_timeout=payment_timeout, redis=redis
    )


async def _create(
    session: AsyncSession,
    user_id: uuid.UUID,
    items: Sequence[cart.PricedItem],
    checkout: Checkout,
    *,
    payment_timeout: int,
    redis: Redis,
) -> Order | NewOrder:
    """The order placed (the stored one when it was paid at once, having nothing to pay)."""
    order = NewOrder(id=uuid.uuid4(), user_id=user_id)
    for position, item in enumerate(items):
        if not item.is_for_sale:
            raise _unavailable(item.variant_id)
        order.lines.append(
            NewOrderLine(
                id=uuid.uuid4(),
                order_id=order.id,
                position=position,
                variant_id=item.variant_id,
                sku=item.sku,
                product_name=item.product_name,
                quantity=item.quantity,
                unit_price_amount=item.unit_price.amount,
                currency=item.unit_price.currency,
            )
        )
    _price(order)
    await _apply_voucher(session, order, checkout.voucher_code)
    quote = await _quote_delivery(session, order, checkout, items)
    order.shipping_method, order.shipping_amount = quote.method_code, quote.amount
    order.total_amount = order.subtotal_amount + order.shipping_amount - order.discount_amount
    order.shipping_address = checkout.shipping_address
    order.payment_due_at = utcnow() + dt.timedelta(seconds=payment_timeout)
    await repository.insert_order(session, order, "order.created", _event_payload(order))
    # Last, so the stock rows (the hot ones) stay locked for as little of the transaction as can be.
    quantities = inventory.quantities_of((item.variant_id, item.quantity) for item in items)
    await inventory.reserve(
        session, order.id, quantities, redis=redis, warehouse_id=order.pickup_point_id
    )
    if order.total_amount == 0:  # nothing to pay (a 100 % voucher, free shipping): paid now
        return await mark_paid(session, order.id)
    return order


async def _quote_delivery(
    session: AsyncSession, order: NewOrder, checkout: Checkout, items: Sequence[cart.PricedItem]
) -> pricing.ShippingQuote:
    """The shipping method and price: free collection at a pickup point (whose stock the order
    then reserves), or the named or cheapest shipping method. 422 ``pickup_point_unavailable``
    or ``pickup_point_required`` for an inconsistent choice."""
    if checkout.pickup_point_id is not None:
        if checkout.shipping_method not in (None, PICKUP_METHOD):
            raise ValidationFailed(
                "An order collected at a pickup point is not shipped.",
                code="shipping_method_unavailable",
            )
        order.pickup_point_id = (await pickup.pickup_point(session, checkout.pickup_point_id)).id
        return pricing.ShippingQuote(PICKUP_METHOD, 0)
    if checkout.shipping_method == PICKUP_METHOD:
        raise ValidationFailed("Name the pickup point to collect at.", code="pickup_point_required")
    return await pricing.quote_shipping(
        session,
        checkout.shipping_method,
        currency=order.currency,
        merchandise_amount=order.subtotal_amount - order.discount_amount,
        weight_grams=sum(item.weight_grams * item.quantity for item in items),
    )


def _unavailable(variant_id: uuid.UUID) -> ValidationFailed:
    return ValidationFailed(
        "An item is no longer for sale.", code="variant_unavailable", variant_id=str(variant_id)
    )


def _price(order: NewOrder) -> None:
    """Set the subtotal and currency from the lines (422 when currencies are mixed)."""
    if not order.lines:
        raise ValidationFailed("An order needs at least one line.", code="order_empty")
    currencies = {line.currency for line in order.lines}
    if len(currencies) != 1:
        raise ValidationFailed("An order is paid in one currency.", code="currency_mismatch")
    order.currency = currencies.pop()
    order.subtotal_amount = sum(line.unit_price_amount * line.quantity for line in order.lines)
    order.discount_amount = 0


async def _apply_voucher(session: AsyncSession, order: NewOrder, code: str | None) -> None:
    if code is None:
        return
    voucher, discount = await pricing.claim_voucher(
        session, code, subtotal_amount=order.subtotal_amount, currency=order.currency
    )
    order.voucher_id, order.voucher_code, order.discount_amount = voucher.id, voucher.code, discount


async def get_order(
    session: AsyncSession, order_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> Order:
    """An order; when ``user_id`` is given it must be theirs. 404 otherwise (never a leak)."""
    order = await repository.get_order(session, order_id)
    if order is None or (user_id is not None and order.user_id != user_id):
        raise NotFound("No such order.", code="order_not_found")
    return order


async def list_orders(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None = None,
    status: str | None = None,
    number: int | None = None,
    email: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[Sequence[Order], str | None]:
    """A page of orders, newest first, narrowed by the filters given; and the next cursor."""
    after = decode_cursor(cursor, _NEWEST, _cursor_key) if cursor is not None else None
    where = OrderFilter(
        user_id=user_id,
        status=OrderStatus(status) if status else None,
        number=number,
        email=email,
        after=after,
    )
    orders = await repository.list_orders(session, where, limit + 1)
    if len(orders) <= limit:
        return orders, None
    last = orders[limit - 1]
    return orders[:limit], encode_cursor(_NEWEST, last.created_at, last.id)


def _cursor_key(created_at: Any, order_id: Any) -> tuple[dt.datetime, uuid.UUID]:
    """The (created_at, id) an order list cursor holds; ValueError or TypeError if malformed."""
    return dt.datetime.fromisoformat(created_at), uuid.UUID(str(order_id))


async def mark_paid(session: AsyncSession, order_id: uuid.UUID) -> Order:
    """The order was paid (``pay``), and as it stands now."""
    await pay(session, order_id)
    return await get_order(session, order_id)


async def pay(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """The order was paid: its held stock becomes allocated and ``order.paid`` is recorded;
    whether this call moved it. Calling it again changes nothing (False); 409
    ``order_state_conflict`` for an order that was cancelled (its stock is gone).

    The move writes its event from what it reads back, in one statement, so a payment callback
    pays an order without loading it."""
    if not await repository.mark_paid(session, order_id, utcnow(), "order.paid"):
        order = await get_order(session, order_id)
        if order.status in _PAID_OR_LATER:
            return False
        raise _illegal(order, _S.PAID)
    # Last, as at checkout: the stock rows stay locked only until the commit that follows.
    await inventory.allocate(session, order_id)
    return True


async def cancel_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    reason: str,
    redis: Redis,
    user_id: uuid.UUID | None = None,
) -> Order:
    """Cancel an unpaid order (the buyer's own when ``user_id`` is given), releasing its stock
    and voucher use. Cancelling a cancelled order changes nothing; 409 once it is paid."""
    await get_order(session, order_id, user_id=user_id)
    if await repository.update_status(
        session,
        order_id,
        [_S.PENDING_PAYMENT],
        _S.CANCELLED,
        cancelled_at=utcnow(),
        cancel_reason=reason,
    ):
        return await _after_cancel(session, order_id, redis)
    order = await get_order(session, order_id)
    if order.status == _S.CANCELLED:
        return order
    raise _illegal(order, _S.CANCELLED)


async def expire_order(session: AsyncSession, order_id: uuid.UUID, redis: Redis) -> bool:
    """Cancel an order still unpaid past its deadline; whether it was cancelled now.

    Safe to run twice and against a concurrent payment (one of them wins); an order paid, already
    cancelled or not yet due is left alone.
    """
    if not await repository.update_status(
        session,
        order_id,
        [_S.PENDING_PAYMENT],
        _S.CANCELLED,
        only_if_due=True,
        cancelled_at=utcnow(),
        cancel_reason=PAYMENT_TIMEOUT_REASON,
    ):
        return False
    await _after_cancel(session, order_id, redis)
    return True


async def expire_overdue_orders(database: Database, redis: Redis) -> int:
    """Cancel the overdue unpaid orders (oldest deadline first, a batch per sweep); how many.

    Each order is cancelled in its own transaction, so the sweep never holds the stock rows of
    many orders at once (and never deadlocks against checkouts or payments).
    """
    async with database.unit_of_work() as session:
        overdue = await repository.overdue_order_ids(session, SWEEP_BATCH)
    expired = 0
    for order_id in overdue:
        async with database.unit_of_work() as session:
            expired += await expire_order(session, order_id, redis)
    return expired


async def move_order(
    session: AsyncSession, order_id: uuid.UUID, status: str, redis: Redis
) -> Order:
    """Staff moves an order along the state machine: 409 for an illegal move, nothing for a move
    to the state it is already in."""
    target = OrderStatus(status)
    if target == _S.PAID:
        return await mark_paid(session, order_id)
    if target == _S.CANCELLED:
        return await cancel_order(session, order_id, reason="staff", redis=redis)
    if target == _S.REFUNDED:
        return await mark_refunded(session, order_id, redis)
    sources = [status for status, targets in TRANSITIONS.items() if target in targets]
    is_shipping = target == _S.SHIPPED
    values: dict[str, Any] = {"shipped_at": utcnow()} if is_shipping else {}
    if await repository.update_status(
        session, order_id, sources, target, needs_address=is_shipping, **values
    ):
        if is_shipping:
            await inventory.ship(session, order_id)
        return await _announce_moved(session, order_id, target)
    order = await get_order(session, order_id)
    if order.status == target:
        return order
    if is_shipping and order.status in sources and order.shipping_address is None:
        raise Conflict(
            "An order cannot ship before it has a shipping address.",
            code="shipping_address_missing",
        )
    raise _illegal(order, target)


async def set_shipping_address(
    session: AsyncSession,
    order_id: uuid.UUID,
    address: dict[str, Any],
    *,
    user_id: uuid.UUID | None = None,
) -> Order:
    """Set where an order ships (the buyer's own when ``user_id`` is given) while it has not
    shipped; 409 ``order_state_conflict`` once it has shipped or was cancelled or refunded."""
    await get_order(session, order_id, user_id=user_id)
    changed = await repository.set_shipping_address(session, order_id, address, _NOT_SHIPPED)
    order = await get_order(session, order_id)
    if not changed:
        raise Conflict(
            f"The shipping address of a {order.status.value} order cannot change.",
            code="order_state_conflict",
            order_status=order.status.value,
        )
    _announce(session, order, "order.shipping_address_set")
    return order


async def mark_refunded(session: AsyncSession, order_id: uuid.UUID, redis: Redis) -> Order:
    """The order's payment was refunded: its voucher use is given back and units not yet
    shipped go back on sale. Idempotent."""
    sources = [status for status, targets in TRANSITIONS.items() if _S.REFUNDED in targets]
    if await repository.update_status(session, order_id, sources, _S.REFUNDED):
        await _give_back(session, order_id, redis)
        return await _announce_moved(session, order_id, _S.REFUNDED)
    order = await get_order(session, order_id)
    if order.status == _S.REFUNDED:
        return order
    raise _illegal(order, _S.REFUNDED)


async def _after_cancel(session: AsyncSession, order_id: uuid.UUID, redis: Redis) -> Order:
    """Give back the voucher use and the units; have the open payment closed after commit."""
    order = await _give_back(session, order_id, redis)
    _announce(session, order, "order.cancelled")
    defer(session, ORDER_CANCELLED_TASK, str(order_id))
    return order


async def _give_back(session: AsyncSession, order_id: uuid.UUID, redis: Redis) -> Order:
    """Give back a cancelled or refunded order's voucher use, then its unshipped units: the
    voucher row before stock rows, as checkout locks them."""
    order = await get_order(session, order_id)
    if order.voucher_id is not None:
        await repository.release_voucher(session, order.voucher_id)
    await inventory.release(session, order_id, redis=redis)
    return order


async def _announce_moved(session: AsyncSession, order_id: uuid.UUID, status: OrderStatus) -> Order:
    order = await get_order(session, order_id)
    _announce(session, order, f"order.{status.value}")
    return order


def _announce(session: AsyncSession, order: Order, topic: str) -> None:
    """Record an order event for its buyer (and staff) in the current transaction."""
    payload = {"number": order.number, **_event_payload(order)}
    record_event(session, topic, payload, user_id=order.user_id)


def _event_payload(order: Order | NewOrder) -> dict[str, Any]:
    """What an order event says of its order, but its number."""
    return {"order_id": order.id, "status": order.status.value, "total": order.total.model_dump()}


def _illegal(order: Order, target: OrderStatus) -> Conflict:
    return Conflict(
        f"An order that is {order.status.value} cannot become {target.value}.",
        code="order_state_conflict",
        order_status=order.status.value,
    )
