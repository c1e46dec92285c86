"""Flash-sale rules: scheduling a sale, the purchase decided in Redis, and what buyers read.

A purchase touches Redis only (one Lua call): under a stampede the database would serialise every
buyer on one stock row, while Redis answers each in microseconds. The database still has the last
word: the worker turns tickets into orders through guarded updates (``flashsale/tickets.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import call_after_commit, utcnow
from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.core.jobs import Job, defer, publish
from agora.core.ratelimit import BudgetCall
from agora.flashsale import ledger, repository, stock
from agora.flashsale.models import FlashSale

PROCESS_TICKETS_TASK = "agora.flashsale.process_tickets"
END_SALE_TASK = "agora.flashsale.end_sale"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SaleTerms:
    """What staff ask for when scheduling a sale."""

    variant_id: uuid.UUID
    warehouse_id: uuid.UUID | None
    price_amount: int
    currency: str
    quantity: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    per_user_limit: int


@dataclass(frozen=True)
class SaleView:
    """A sale as buyers see it, with the units left to buy now."""

    fields: dict[str, Any]
    remaining: int


async def schedule_sale(session: AsyncSession, redis: Redis, terms: SaleTerms) -> SaleView:
    """Create a sale and set its units aside from regular stock, in the caller's transaction.

    404 ``variant_not_found``; 422 ``currency_mismatch`` when the price is not in the variant's
    currency; 409 ``out_of_stock`` when the warehouse has fewer units available. Redis is primed
    after the commit (reconciliation primes it if that step is lost), and the sale's end is
    a job due at ``ends_at``, kept in the database until then (never a broker countdown).
    """
    variant = await repository.get_variant(session, terms.variant_id)
    if variant is None:
        raise NotFound("No such variant.", code="variant_not_found")
    if variant.currency != terms.currency:
        raise ValidationFailed(
            f"The variant is priced in {variant.currency}.", code="currency_mismatch"
        )
    sale = FlashSale(
        id=uuid.uuid4(),
        variant_id=terms.variant_id,
        price_amount=terms.price_amount,
        currency=terms.currency,
        quantity=terms.quantity,
        per_user_limit=terms.per_user_limit,
        starts_at=terms.starts_at,
        ends_at=terms.ends_at,
        units_ordered=0,
        state_epoch=0,
    )
    sale.warehouse_id = await stock.set_aside(
        session, sale.id, terms.variant_id, terms.warehouse_id, terms.quantity
    )
    repository.add_sale(session, sale)
    await session.flush()
    defer(session, END_SALE_TASK, str(sale.id), not_before=sale.ends_at)
    state = live_state(sale)

    async def prime_redis() -> None:
        try:
            await ledger.open_sale(redis, state, ttl=_state_ttl(sale.ends_at))
        except RedisError:
            log.warning("flash_sale_prime_failed", sale_id=str(sale.id))

    call_after_commit(session, prime_redis)
    return SaleView(public_fields(sale), sale.quantity)


def public_fields(sale: FlashSale) -> dict[str, Any]:
    """The sale's fields buyers may see (cached in Redis for the no-SQL read path)."""
    return {
        "id": str(sale.id),
        "variant_id": str(sale.variant_id),
        "price": {"amount": sale.price_amount, "currency": sale.currency},
        "quantity": sale.quantity,
        "per_user_limit": sale.per_user_limit,
        "starts_at": sale.starts_at.isoformat(),
        "ends_at": sale.ends_at.isoformat(),
    }


def live_state(sale: FlashSale) -> ledger.SaleState:
    """The Redis state of a sale, its units left being those the database still holds for it."""
    return ledger.SaleState(
        sale_id=sale.id,
        starts_at_ms=_epoch_ms(sale.starts_at),
        ends_at_ms=_epoch_ms(sale.ends_at),
        per_user_limit=sale.per_user_limit,
        quantity=sale.quantity,
        remaining=sale.units_held,
        info=public_fields(sale),
        epoch=sale.state_epoch,
    )


def state_ttl(sale: FlashSale) -> int:
    """Seconds the Redis state of a sale lives: until a day after it ends."""
    return _state_ttl(sale.ends_at)


async def sale_view(session: AsyncSession, redis: Redis, sale_id: uuid.UUID) -> SaleView:
    """A sale with its live ``remaining``, from Redis without SQL; from the database once
    Redis has forgotten it. 404 ``flash_sale_not_found``."""
    live = await ledger.live_sale(redis, sale_id)
    if live is not None:
        fields, remaining = live
        return SaleView(fields, remaining)
    sale = await repository.get_sale(session, sale_id)
    if sale is None:
        raise NotFound("No such flash sale.", code="flash_sale_not_found")
    return SaleView(public_fields(sale), 0 if sale.settled_at else sale.units_held)


@dataclass(frozen=True)
class PurchaseTicket:
    """The ticket a purchase answered, and whether it was answered before (same request)."""

    ticket_id: uuid.UUID
    is_replay: bool


async def purchase(
    redis: Redis,
    sale_id: uuid.UUID,
    buyer_id: uuid.UUID,
    quantity: int,
    *,
    shipping_address: dict[str, Any] | None = None,
    request_key: str | None = None,
    fingerprint: str = "",
    budgets: BudgetCall | None = None,
) -> PurchaseTicket:
    """Take units for a buyer in one atomic Redis step, and wake a worker to order them (once
    per burst: the script says whether a worker was already asked).

    ``shipping_address`` (already validated) is kept with the ticket for its order; the
    request's ``budgets`` are spent in the same step. No SQL. 404 ``flash_sale_not_found``;
    409 ``not_started``, ``ended``, ``limit_reached``, ``sold_out``; 422
    ``idempotency_key_reused`` for a key sent before with another body; 429 or 401
    ``token_revoked`` from the budgets.
    """
    decision = await ledger.purchase(
        redis,
        sale_id,
        buyer_id,
        quantity,
        shipping_address=shipping_address,
        request_key=request_key,
        fingerprint=fingerprint,
        budgets=budgets,
    )
    if not decision.is_accepted:
        raise _refusal(decision)
    if decision.should_wake_worker:
        await _wake_worker(sale_id)
    return PurchaseTicket(uuid.UUID(decision.detail), decision.outcome == "replayed")


def _refusal(decision: ledger.PurchaseOutcome) -> NotFound | Conflict | ValidationFailed:
    outcome, detail = decision.outcome, decision.detail
    if outcome == "not_found":
        return NotFound("No such flash sale.", code="flash_sale_not_found")
    if outcome == "idempotency_key_reused":
        return ValidationFailed(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
        )
    if outcome == "not_started":
        return Conflict("The sale has not started.", code="not_started", starts_at=_iso(detail))
    if outcome == "ended":
        return Conflict("The sale has ended.", code="ended")
    if outcome == "limit_reached":
        return Conflict(
            "You already hold as many units as this sale allows.",
            code="limit_reached",
            held=int(detail),
        )
    return Conflict("Not enough units left.", code="sold_out", remaining=int(detail))


async def _wake_worker(sale_id: uuid.UUID) -> None:
    """Ask a worker to drain the sale's ticket queue; if the broker is down, reconciliation will."""
    try:
        await anyio.to_thread.run_sync(publish, Job(PROCESS_TICKETS_TASK, (str(sale_id),)))
    except Exception:
        log.warning("flash_sale_wake_failed", sale_id=str(sale_id), exc_info=True)


@dataclass(frozen=True)
class TicketView:
    """Where a ticket stands."""

    ticket_id: uuid.UUID
    sale_id: uuid.UUID
    status: str
    quantity: int
    order_id: uuid.UUID | None
    reason: str | None


async def ticket_view(
    session: AsyncSession,
    redis: Redis,
    sale_id: uuid.UUID,
    ticket_id: uuid.UUID,
    *,
    viewer_id: uuid.UUID,
    viewer_is_staff: bool,
) -> TicketView:
    """A ticket, from Redis while the sale is live, else from the database.

    404 ``ticket_not_found`` for a ticket that does not exist or is another buyer's.
    """
    found = await _find_ticket(session, redis, sale_id, ticket_id)
    if found is None or (found[0] != viewer_id and not viewer_is_staff):
        raise NotFound("No such ticket.", code="ticket_not_found")
    return found[1]


async def _find_ticket(
    session: AsyncSession, redis: Redis, sale_id: uuid.UUID, ticket_id: uuid.UUID
) -> tuple[uuid.UUID, TicketView] | None:
    queued = await ledger.read_ticket(redis, sale_id, ticket_id)
    if queued is not None:
        view = TicketView(
            ticket_id, sale_id, queued.status, queued.quantity, queued.order_id, queued.reason
        )
        return queued.buyer_id, view
    row = await repository.get_ticket(session, ticket_id)
    if row is None or row.sale_id != sale_id:
        return None
    view = TicketView(ticket_id, sale_id, row.status.value, row.quantity, row.order_id, row.reason)
    return row.buyer_id, view


def _epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(epoch_ms: str) -> str:
    return dt.datetime.fromtimestamp(int(epoch_ms) / 1000, dt.UTC).isoformat()


def _seconds_until(moment: dt.datetime) -> float:
    return max(0.0, (moment - utcnow()).total_seconds())


def _state_ttl(ends_at: dt.datetime) -> int:
    return int(_seconds_until(ends_at)) + ledger.STATE_TTL_AFTER_END_S
