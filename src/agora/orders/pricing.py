"""Pricing rules of checkout: shipping methods (flat or by weight) and vouchers.

Amounts are integers of minor units; a percentage discount rounds down to a whole minor unit, and
no discount exceeds the subtotal (shipping is never discounted). A voucher's
use is counted by one conditional UPDATE, so a limit of N uses is never passed whatever the
concurrency; a failed checkout rolls the count back with its transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.orders import repository
from agora.orders.models import ShippingKind, ShippingMethod, Voucher, VoucherKind

GRAMS_PER_KILOGRAM = 1000
_Row = TypeVar("_Row")


@dataclass(frozen=True)
class ShippingQuote:
    """The chosen shipping method (None when the shop has none) and its price."""

    method_code: str | None
    amount: int


def shipping_price(
    method: ShippingMethod | repository.ShippingRate, *, merchandise_amount: int, weight_grams: int
) -> int:
    """The price of shipping goods worth ``merchandise_amount`` weighing ``weight_grams``."""
    if method.free_over_amount is not None and merchandise_amount >= method.free_over_amount:
        return 0
    if method.kind == ShippingKind.FLAT:
        return method.base_amount
    started_kilograms = -(-weight_grams // GRAMS_PER_KILOGRAM)
    return method.base_amount + method.per_kg_amount * started_kilograms


async def quote_shipping(
    session: AsyncSession,
    code: str | None,
    *,
    currency: str,
    merchandise_amount: int,
    weight_grams: int,
) -> ShippingQuote:
    """Price the named method, or the cheapest one in the order's currency when none is named.

    422 ``shipping_method_unavailable`` for an unknown, inactive or other-currency method.
    """
    methods = await repository.shipping_rates(session, currency)
    if code is not None:
        methods = [method for method in methods if method.code == code]
        if not methods:
            raise ValidationFailed(
                f"Shipping method {code!r} is not available for {currency} orders.",
                code="shipping_method_unavailable",
            )
    if not methods:
        return ShippingQuote(None, 0)
    priced = [
        (shipping_price(m, merchandise_amount=merchandise_amount, weight_grams=weight_grams), m)
        for m in methods
    ]
    amount, method = min(priced, key=lambda pair: (pair[0], pair[1].code))
    return ShippingQuote(method.code, amount)


async def claim_voucher(
    session: AsyncSession, code: str, *, subtotal_amount: int, currency: str
) -> tuple[Voucher, int]:
    """Count one use of a voucher and compute its discount on ``subtotal_amount``. A voucher
    with a currency (every fixed one, and any with a minimum) applies to orders in it only.

    422 ``voucher_invalid`` (unknown, inactive, expired), ``voucher_currency_mismatch`` or
    ``voucher_minimum_not_met``; 409 ``voucher_exhausted`` when its uses are all taken.
    """
    voucher = await repository.claim_voucher(session, normalise_code(code))
    if voucher is None:
        known = await repository.find_voucher(session, normalise_code(code))
        if (
            known is not None
            and known.is_active
            and known.usage_limit is not None
            and known.used_count >= known.usage_limit
        ):
            raise Conflict("This voucher has been used up.", code="voucher_exhausted")
        raise ValidationFailed("This voucher is not valid.", code="voucher_invalid")
    if voucher.currency is not None and voucher.currency != currency:
        raise ValidationFailed(
            f"This voucher is for {voucher.currency} orders.", code="voucher_currency_mismatch"
        )
    if subtotal_amount < voucher.min_subtotal_amount:
        raise ValidationFailed(
            "The order is below this voucher's minimum.",
            code="voucher_minimum_not_met",
            minimum=voucher.min_subtotal_amount,
        )
    if voucher.kind == VoucherKind.PERCENTAGE:
        return voucher, subtotal_amount * voucher.value // 100
    return voucher, min(voucher.value, subtotal_amount)


def normalise_code(code: str) -> str:
    """Voucher codes are case-insensitive: stored and compared in upper case."""
    return code.strip().upper()


async def list_shipping_methods(session: AsyncSession) -> Sequence[ShippingMethod]:
    """The active shipping methods."""
    return await repository.active_shipping_methods(session)


async def get_shipping_method(session: AsyncSession, code: str) -> ShippingMethod:
    """A shipping method; 404 if there is none with this code."""
    method = await repository.get_shipping_method(session, code)
    return _present(method, NotFound("No such shipping method.", code="shipping_method_not_found"))


async def create_shipping_method(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    kind: str,
    currency: str,
    base_amount: int,
    per_kg_amount: int = 0,
    free_over_amount: int | None = None,
) -> ShippingMethod:
    """A new shipping method; 409 ``shipping_method_code_taken`` if the code is used."""
    method = await repository.insert_shipping_method(
        session,
        code=code,
        name=name,
        kind=ShippingKind(kind),
        currency=currency,
        base_amount=base_amount,
        per_kg_amount=per_kg_amount,
        free_over_amount=free_over_amount,
    )
    return _present(
        method, Conflict(f"Shipping method {code!r} exists.", code="shipping_method_code_taken")
    )


async def list_vouchers(session: AsyncSession) -> Sequence[Voucher]:
    """Every voucher."""
    return await repository.list_vouchers(session)


async def get_voucher(session: AsyncSession, voucher_id: uuid.UUID) -> Voucher:
    """A voucher; 404 if there is none with this id."""
    voucher = await repository.get_voucher(session, voucher_id)
    return _present(voucher, NotFound("No such voucher.", code="voucher_not_found"))


async def create_voucher(
    session: AsyncSession,
    *,
    code: str,
    kind: str,
    value: int,
    currency: str | None = None,
    min_subtotal_amount: int = 0,
    usage_limit: int | None = None,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
) -> Voucher:
    """A new voucher; 422 for inconsistent terms, 409 ``voucher_code_taken`` if the code is used.

    ``currency`` is required for a fixed amount or a minimum (amounts of that currency); a
    percentage voucher given one applies to orders in that currency only.
    """
    kind = VoucherKind(kind)
    if kind == VoucherKind.PERCENTAGE and not 0 < value <= 100:
        raise ValidationFailed("A percentage is between 1 and 100.", code="invalid_voucher")
    if kind == VoucherKind.FIXED and currency is None:
        raise ValidationFailed("A fixed voucher needs a currency.", code="invalid_voucher")
    if min_subtotal_amount and currency is None:
        raise ValidationFailed(
            "A voucher's minimum is an amount of a currency: give its currency.",
            code="invalid_voucher",
        )
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed("A voucher must end after it starts.", code="invalid_voucher")
    voucher = await repository.insert_voucher(
        session,
        code=normalise_code(code),
        kind=kind,
        value=value,
        currency=currency,
        min_subtotal_amount=min_subtotal_amount,
        usage_limit=usage_limit,
        used_count=0,
        starts_at=starts_at,
        ends_at=ends_at,
        is_active=True,
    )
    return _present(voucher, Conflict(f"Voucher {code!r} exists.", code="voucher_code_taken"))


def _present(row: _Row | None, error: Exception) -> _Row:
    """``row``, or ``error`` raised when the repository found or wrote nothing."""
    if row is None:
        raise error
    return row
