"""The Redis side of a sale: its counters, buyers, tickets and ticket queue, and the Lua that
changes them.

Every change that must be atomic is one Lua script (``flashsale/lua/``), run with EVALSHA. All
keys of one sale share the hash tag ``{sale id}``, so a sale lives on one node of a Redis
Cluster. The purchase script also spends the request's rate-limit budgets and checks its token
(``core/lua/ratelimit.lua``, embedded), so that a purchase is one round trip; those keys are
the buyer's and client's, outside the sale's slot, which a single Redis node (what Agora runs
on) allows and a Cluster would not.

- ``sale``: a hash of the window (epoch ms), the per-buyer limit, ``quantity``, ``remaining``,
  ``queued_units`` (units in tickets the worker has not settled) and ``is_closed``, plus ``info``,
  the sale's public fields as JSON, so ``GET /flash-sales/{id}`` needs no SQL either, and
  ``epoch``, the sale row's ``state_epoch`` when this state was written;
- ``buyers``: units held per buyer, for the limit;
- ``ticket:<id>``: buyer, quantity, status, the epoch it was sold in, then ``order_id`` or
  ``reason``;
- ``queue``: a stream of ticket ids read by the workers through the consumer group ``workers``;
  an entry is acknowledged only after its ticket is settled, so a worker killed mid-ticket leaves
  it pending, to be claimed again.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from agora.core.ratelimit import BudgetCall, budget_script_source
from agora.core.redis import LuaScript
from agora.core.serialization import dumps, loads

KEY_PREFIX = "agora:flashsale:"
CONSUMER_GROUP = "workers"
IDEMPOTENCY_TTL_S = 24 * 3600
STATE_TTL_AFTER_END_S = 24 * 3600
WAKE_TTL_MS = 5000


def _key(sale_id: uuid.UUID | str, part: str) -> str:
    return f"{KEY_PREFIX}{{{sale_id}}}:{part}"


def sale_key(sale_id: uuid.UUID | str) -> str:
    """The hash of a sale's counters and parameters."""
    return _key(sale_id, "sale")


def buyers_key(sale_id: uuid.UUID | str) -> str:
    """The hash of units held per buyer."""
    return _key(sale_id, "buyers")


def queue_key(sale_id: uuid.UUID | str) -> str:
    """The stream of ticket ids waiting for the worker."""
    return _key(sale_id, "queue")


def ticket_key(sale_id: uuid.UUID | str, ticket_id: uuid.UUID | str) -> str:
    """The hash of one ticket."""
    return _key(sale_id, f"ticket:{ticket_id}")


def wake_key(sale_id: uuid.UUID | str) -> str:
    """Set while a worker has been asked to drain the queue, so a stampede asks once."""
    return _key(sale_id, "wake")


def idempotency_key(sale_id: uuid.UUID | str, buyer_id: uuid.UUID, key: str) -> str:
    """Where the ticket answered to a buyer's ``Idempotency-Key`` is kept."""
    return _key(sale_id, f"idempotency:{buyer_id}:{key}")


@functools.cache
def _script(name: str) -> LuaScript:
    """A Lua script and its SHA, read and hashed once per process rather than on every call."""
    source = resources.files("agora.flashsale").joinpath("lua", f"{name}.lua").read_bytes()
    if name == "purchase":
        source = _budget_function() + source
    return LuaScript.of(source)


def _budget_function() -> bytes:
    """core's rate-limit script as the Lua function ``spend_budgets(KEYS, ARGV)`` that
    ``purchase.lua`` calls first (its parameters shadow the script's own ``KEYS``/``ARGV``)."""
    return b"local function spend_budgets(KEYS, ARGV)\n" + budget_script_source() + b"\nend\n"


async def _run(redis: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """Run a Lua script by its SHA, loading it first when the server does not know it; sent
    packed by us (``core/redis.LuaScript``): the purchase is the hottest Redis call there is."""
    return await _script(name).run(redis, keys, args)


@dataclass(frozen=True)
class SaleState:
    """What Redis knows of a sale, to create it there."""

    sale_id: uuid.UUID
    starts_at_ms: int
    ends_at_ms: int
    per_user_limit: int
    quantity: int
    remaining: int
    info: dict[str, Any]
    epoch: int = 0


async def open_sale(redis: Redis, state: SaleState, *, ttl: int) -> bool:
    """Create a sale's Redis state unless it exists (running it twice changes nothing)."""
    # The consumer group comes first: a ticket can only be queued once the sale hash exists.
    await _ensure_queue(redis, state.sale_id, ttl)
    return bool(await _run(redis, "open", [sale_key(state.sale_id)], _state_args(state, ttl)))


def _state_args(state: SaleState, ttl: int) -> list[Any]:
    """The arguments ``open.lua`` and ``rebuild.lua`` share, in their order."""
    return [
        state.starts_at_ms,
        state.ends_at_ms,
        state.per_user_limit,
        state.quantity,
        state.remaining,
        dumps(state.info),
        ttl,
        state.epoch,
    ]


async def _ensure_queue(redis: Redis, sale_id: uuid.UUID, ttl: int) -> None:
    """The ticket queue and its consumer group, created unless they exist."""
    try:
        await redis.xgroup_create(queue_key(sale_id), CONSUMER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    await redis.expire(queue_key(sale_id), ttl)


@dataclass(frozen=True)
class RecordedState:
    """What the database records of a sale, for Redis to be rebuilt from exactly."""

    sale: SaleState
    is_closed: bool
    units_per_buyer: dict[uuid.UUID, int]
    returned_ticket_ids: list[uuid.UUID]


async def rebuild_sale(redis: Redis, recorded: RecordedState, *, ttl: int) -> bool:
    """Recreate a sale's state lost by Redis from what the database records, unless it exists;
    whether it was rebuilt. The caller holds the sale's row lock."""
    state = recorded.sale
    await _ensure_queue(redis, state.sale_id, ttl)
    keys = [sale_key(state.sale_id), buyers_key(state.sale_id)]
    keys.extend(ticket_key(state.sale_id, ticket_id) for ticket_id in recorded.returned_ticket_ids)
    args = [*_state_args(state, ttl), int(recorded.is_closed), len(recorded.units_per_buyer)]
    for buyer_id, units in recorded.units_per_buyer.items():
        args.extend((str(buyer_id), units))
    return bool(await _run(redis, "rebuild", keys, args))


@dataclass(frozen=True)
class PurchaseOutcome:
    """What the purchase script decided: ``accepted``/``replayed`` with a ticket, or a refusal."""

    outcome: str
    detail: str
    should_wake_worker: bool = False

    @property
    def is_accepted(self) -> bool:
        """Whether the buyer holds a ticket (new, or the one answered to the same request)."""
        return self.outcome in ("accepted", "replayed")


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
) -> PurchaseOutcome:
    """Try to take ``quantity`` units for a buyer; one atomic step in Redis. The shipping
    address, if any, is kept with the ticket.

    ``budgets`` (the request's rate limits and token check) are spent first, in the same
    script: 429 ``RateLimited`` or 401 ``token_revoked`` when they refuse, nothing bought."""
    ticket_id = uuid.uuid4()
    keys = [
        sale_key(sale_id),
        buyers_key(sale_id),
        queue_key(sale_id),
        ticket_key(sale_id, ticket_id),
        idempotency_key(sale_id, buyer_id, request_key or ""),
        wake_key(sale_id),
    ]
    args = [
        str(buyer_id),
        quantity,
        str(ticket_id),
        fingerprint if request_key else "",
        STATE_TTL_AFTER_END_S,
        IDEMPOTENCY_TTL_S,
        WAKE_TTL_MS,
        dumps(shipping_address) if shipping_address else b"",
    ]
    if budgets is not None:
        keys.extend(budgets.keys)
        args.extend(budgets.args)
    answer = await _run(redis, "purchase", keys, args)
    if budgets is not None and answer[0] == b"budget_refused":
        budgets.check(answer[1:])
    outcome, detail, *wake = answer
    return PurchaseOutcome(outcome.decode(), detail.decode(), wake == [b"1"])


async def settle(
    redis: Redis, sale_id: uuid.UUID, ticket_id: uuid.UUID, outcome: str, detail: str
) -> str:
    """Record a ticket's fate (``ordered`` + order id, or ``rejected`` + reason), once."""
    [status] = await settle_and_acknowledge(redis, sale_id, [(ticket_id, outcome, detail, b"")])
    return status


TicketFate = tuple[uuid.UUID, str, str, bytes]
"""A ticket, its outcome (``''`` for none), the order id or reason, the queue entry to drop."""


async def settle_and_acknowledge(
    redis: Redis, sale_id: uuid.UUID, fates: list[TicketFate]
) -> list[str]:
    """Record the fate of several tickets and drop their queue entries, in one atomic call;
    each ticket's status after it."""
    keys = [sale_key(sale_id), buyers_key(sale_id), queue_key(sale_id)]
    args: list[Any] = [CONSUMER_GROUP]
    for ticket_id, outcome, detail, entry_id in fates:
        keys.append(ticket_key(sale_id, ticket_id))
        args.extend((outcome, detail, entry_id))
    statuses: list[bytes] = await _run(redis, "settle", keys, args)
    return [status.decode() for status in statuses]


async def release(
    redis: Redis,
    sale_id: uuid.UUID,
    ticket_id: uuid.UUID,
    buyer_id: uuid.UUID,
    quantity: int,
    *,
    ticket_ttl: int,
) -> bool:
    """Give a cancelled order's units back to the sale and its buyer, once per ticket."""
    keys = [sale_key(sale_id), buyers_key(sale_id), ticket_key(sale_id, ticket_id)]
    return bool(await _run(redis, "release", keys, [str(buyer_id), quantity, ticket_ttl]))


async def close(redis: Redis, sale_id: uuid.UUID) -> str:
    """Stop selling: ``closed``, or ``busy`` while tickets wait, or ``missing`` without state."""
    status: bytes = await _run(redis, "close", [sale_key(sale_id)], [])
    return status.decode()


@dataclass(frozen=True)
class LiveUnits:
    """A sale's Redis-side units, read in one command."""

    remaining: int
    queued_units: int
    is_closed: bool


async def live_units(redis: Redis, sale_id: uuid.UUID) -> LiveUnits | None:
    """Units left and units in queued tickets, or None when Redis has no state for the sale."""
    values: list[Any] = await redis.hmget(
        sale_key(sale_id), ["remaining", "queued_units", "is_closed"]
    )
    remaining, queued, closed = values
    if remaining is None:
        return None
    return LiveUnits(int(remaining), int(queued), closed == b"1")


async def live_epoch(redis: Redis, sale_id: uuid.UUID) -> int | None:
    """The epoch of the sale's Redis state, or None when Redis has no state for it."""
    epoch = await redis.hget(sale_key(sale_id), "epoch")
    if epoch is None:
        return None if not await redis.exists(sale_key(sale_id)) else 0
    return int(epoch)


async def live_sale(redis: Redis, sale_id: uuid.UUID) -> tuple[dict[str, Any], int] | None:
    """A sale's public fields and the units left to buy now, or None when Redis lacks it."""
    values: list[Any] = await redis.hmget(sale_key(sale_id), ["info", "remaining", "is_closed"])
    info, remaining, closed = values
    if info is None or remaining is None:
        return None
    return loads(info), 0 if closed == b"1" else max(0, int(remaining))


@dataclass(frozen=True)
class QueuedTicket:
    """A ticket as Redis knows it."""

    ticket_id: uuid.UUID
    buyer_id: uuid.UUID
    quantity: int
    status: str
    order_id: uuid.UUID | None
    reason: str | None
    shipping_address: dict[str, Any] | None = None
    epoch: int = 0


async def read_ticket(
    redis: Redis, sale_id: uuid.UUID, ticket_id: uuid.UUID
) -> QueuedTicket | None:
    """A ticket from Redis, or None when Redis does not (or no longer) know it."""
    fields: dict[bytes, bytes] = await redis.hgetall(ticket_key(sale_id, ticket_id))  # type: ignore[assignment]
    if b"buyer_id" not in fields:
        return None
    return _ticket(ticket_id, fields)


async def read_tickets(
    redis: Redis, sale_id: uuid.UUID, ticket_ids: list[uuid.UUID]
) -> list[QueuedTicket | None]:
    """Several tickets in one round trip (a pipeline), None for each Redis does not know."""
    async with redis.pipeline(transaction=False) as pipeline:
        for ticket_id in ticket_ids:
            pipeline.hgetall(ticket_key(sale_id, ticket_id))
        answers: list[dict[bytes, bytes]] = await pipeline.execute()
    return [
        _ticket(ticket_id, fields) if b"buyer_id" in fields else None
        for ticket_id, fields in zip(ticket_ids, answers, strict=True)
    ]


def _ticket(ticket_id: uuid.UUID, fields: dict[bytes, bytes]) -> QueuedTicket:
    order_id = fields.get(b"order_id")
    reason = fields.get(b"reason")
    address = fields.get(b"shipping_address")
    return QueuedTicket(
        ticket_id=ticket_id,
        buyer_id=uuid.UUID(fields[b"buyer_id"].decode()),
        quantity=int(fields[b"quantity"]),
        status=fields[b"status"].decode(),
        order_id=uuid.UUID(order_id.decode()) if order_id else None,
        reason=reason.decode() if reason else None,
        shipping_address=loads(address) if address else None,
        epoch=int(fields.get(b"epoch", b"0")),
    )


@dataclass(frozen=True)
class QueueEntry:
    """One entry of the ticket queue: its stream id and the ticket it names."""

    entry_id: bytes
    ticket_id: uuid.UUID


def _entries(raw: list[tuple[bytes, dict[bytes, bytes] | None]]) -> list[QueueEntry]:
    return [
        QueueEntry(entry_id, uuid.UUID(fields[b"ticket_id"].decode()))
        for entry_id, fields in raw
        if fields  # an entry deleted while pending comes back without fields
    ]


async def next_entries(
    redis: Redis, sale_id: uuid.UUID, consumer: str, count: int
) -> list[QueueEntry]:
    """Tickets never delivered to any worker, now delivered to ``consumer``."""
    answer: Any = await redis.xreadgroup(
        CONSUMER_GROUP, consumer, {queue_key(sale_id): ">"}, count=count
    )
    if not answer:
        return []
    return _entries(answer[0][1])


async def next_entries_or_sleep(
    redis: Redis, sale_id: uuid.UUID, consumer: str, count: int
) -> list[QueueEntry]:
    """Like ``next_entries``; when the queue is empty, clear the wake flag first and look once
    more, so a ticket queued meanwhile is either seen now or wakes a worker itself."""
    entries = await next_entries(redis, sale_id, consumer, count)
    if entries:
        return entries
    await redis.delete(wake_key(sale_id))
    return await next_entries(redis, sale_id, consumer, count)


async def claim_stale_entries(
    redis: Redis, sale_id: uuid.UUID, consumer: str, min_idle_ms: int, count: int
) -> list[QueueEntry]:
    """Tickets delivered to a worker that has not finished them for ``min_idle_ms``: its job was
    lost (the worker died), so ``consumer`` takes them over."""
    answer: Any = await redis.xautoclaim(
        queue_key(sale_id), CONSUMER_GROUP, consumer, min_idle_ms, start_id="0-0", count=count
    )
    return _entries(answer[1])
