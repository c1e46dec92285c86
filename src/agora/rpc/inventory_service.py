"""``agora.inventory.v1.InventoryService``: the inventory service over gRPC.

Like an ``api.py``: each method parses the request, runs the same ``inventory.service``
function as the HTTP endpoint in one unit of work (so the same rules, the same locks and the
same never-oversell guarantee), and shapes the answer. ``WatchStock`` sends the stock of the
variants asked for, then again after every committed change of their available units (a notice
on Redis; the stock sent is always read fresh from the database).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from redis.asyncio import Redis

from agora.core.db import Database
from agora.core.errors import AgoraError, ValidationFailed
from agora.inventory import service
from agora.rpc.errors import abort, optional_id, parse_id
from agora.rpc.inventory.v1 import inventory_pb2 as pb
from agora.rpc.inventory.v1 import inventory_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
MAX_WATCHED_VARIANTS = 1000


def _answers_errors(
    method: Callable[[Any, _Request, Context], Awaitable[_Response]],
) -> Callable[[Any, _Request, Context], Awaitable[_Response]]:
    """Turn an ``AgoraError`` raised by a method into its gRPC status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: _Request, context: Context) -> _Response:
        try:
            return await method(self, request, context)
        except AgoraError as error:
            await abort(context, error)

    return wrapper


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    """The inventory methods, on the process's database and Redis."""

    def __init__(self, database: Database, redis: Redis) -> None:
        self._database = database
        self._redis = redis

    @_answers_errors
    async def GetStock(self, request: pb.GetStockRequest, context: Context) -> pb.VariantStock:
        """A variant's stock levels."""
        variant_id = parse_id(request.variant_id, "variant_id")
        async with self._database.unit_of_work() as session:
            return _stock_message(await service.variant_stock(session, variant_id))

    @_answers_errors
    async def SetStock(self, request: pb.SetStockRequest, context: Context) -> pb.VariantStock:
        """Set the units on hand in a warehouse."""
        variant_id = parse_id(request.variant_id, "variant_id")
        warehouse_id = optional_id(request.warehouse_id, "warehouse_id")
        if request.quantity < 0:
            raise ValidationFailed("quantity cannot be negative.", code="invalid_quantity")
        async with self._database.unit_of_work() as session:
            stock = await service.set_stock(
                session, variant_id, request.quantity, warehouse_id, redis=self._redis
            )
            return _stock_message(stock)

    @_answers_errors
    async def Reserve(self, request: pb.ReserveRequest, context: Context) -> pb.ReserveResponse:
        """Hold units for a reference, all or nothing."""
        reference_id = parse_id(request.reference_id, "reference_id")
        warehouse_id = optional_id(request.warehouse_id, "warehouse_id")
        if not request.lines or any(line.quantity <= 0 for line in request.lines):
            raise ValidationFailed(
                "Reserve at least one line, each of a positive quantity.", code="invalid_lines"
            )
        quantities = service.quantities_of(
            (parse_id(line.variant_id, "variant_id"), line.quantity) for line in request.lines
        )
        async with self._database.unit_of_work() as session:
            await service.reserve(
                session, reference_id, quantities, redis=self._redis, warehouse_id=warehouse_id
            )
        return pb.ReserveResponse(reference_id=str(reference_id))

    @_answers_errors
    async def Release(self, request: pb.ReleaseRequest, context: Context) -> pb.ReleaseResponse:
        """Release every unit held for a reference."""
        reference_id = parse_id(request.reference_id, "reference_id")
        async with self._database.unit_of_work() as session:
            units = await service.release(session, reference_id, redis=self._redis)
        return pb.ReleaseResponse(units=units)

    async def WatchStock(
        self, request: pb.WatchStockRequest, context: Context
    ) -> AsyncIterator[pb.VariantStock]:
        """The stock of each variant asked for, then again whenever it changes."""
        try:
            watched = {parse_id(value, "variant_ids") for value in request.variant_ids}
            if not watched or len(watched) > MAX_WATCHED_VARIANTS:
                raise ValidationFailed(
                    f"Watch between 1 and {MAX_WATCHED_VARIANTS} variants.", code="invalid_watch"
                )
            async with self._redis.pubsub() as pubsub:
                # Subscribed before the first read: a change committed in between is not lost.
                await pubsub.subscribe(service.STOCK_CHANGES_CHANNEL)
                for variant_id in sorted(watched):
                    yield await self._stock(variant_id)
                async for message in pubsub.listen():
                    changed = _changed_variant(message)
                    if changed in watched:
                        yield await self._stock(changed)
        except AgoraError as error:
            await abort(context, error)

    async def _stock(self, variant_id: uuid.UUID) -> pb.VariantStock:
        async with self._database.unit_of_work() as session:
            return _stock_message(await service.variant_stock(session, variant_id))


def _changed_variant(message: dict[str, Any]) -> uuid.UUID | None:
    """The variant a stock-change notice names (None for subscription confirmations)."""
    if message.get("type") != "message":
        return None
    data = message["data"]
    return uuid.UUID(data.decode() if isinstance(data, bytes) else str(data))


def _stock_message(stock: service.VariantStock) -> pb.VariantStock:
    return pb.VariantStock(
        variant_id=str(stock.variant_id),
        available=stock.available,
        levels=[
            pb.StockLevel(
                warehouse_id=str(level.warehouse_id),
                quantity=level.quantity,
                reserved=level.reserved,
                allocated=level.allocated,
                available=level.available,
            )
            for level in stock.levels
        ],
    )
