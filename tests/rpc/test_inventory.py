"""The gRPC inventory service on a real server and channel: the same rules as HTTP, its auth,
status codes, health, reflection and stock streaming."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import httpx
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.rpc.inventory.v1 import inventory_pb2 as pb
from agora.settings import Settings
from tests.factories import create_user, create_variant, stock_of
from tests.rpc.conftest import SERVICE, bearer

Stub = "inventory_pb2_grpc.InventoryServiceAsyncStub"  # a typing-only name of the stubs


async def test_stock_is_set_read_reserved_and_released(inventory: Stub, database: Database) -> None:
    variant_id = str(await create_variant(database))
    stock = await inventory.SetStock(
        pb.SetStockRequest(variant_id=variant_id, quantity=7), metadata=SERVICE
    )
    assert (stock.available, len(stock.levels)) == (7, 1)
    reference = str(uuid.uuid4())
    lines = [pb.ReserveLine(variant_id=variant_id, quantity=3)]
    await inventory.Reserve(
        pb.ReserveRequest(reference_id=reference, lines=lines), metadata=SERVICE
    )
    stock = await inventory.GetStock(pb.GetStockRequest(variant_id=variant_id), metadata=SERVICE)
    assert (stock.available, stock.levels[0].reserved) == (4, 3)
    released = await inventory.Release(pb.ReleaseRequest(reference_id=reference), metadata=SERVICE)
    assert released.units == 3
    assert (await stock_of(database, uuid.UUID(variant_id))).available == 7


async def test_agora_errors_become_status_codes(inventory: Stub, database: Database) -> None:
    variant_id = str(await create_variant(database, stock=1))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await inventory.GetStock(pb.GetStockRequest(variant_id=str(uuid.uuid4())), metadata=SERVICE)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert ("agora-code", "variant_not_found") in tuple(missing.value.trailing_metadata() or ())
    lines = [pb.ReserveLine(variant_id=variant_id, quantity=2)]
    with pytest.raises(grpc.aio.AioRpcError) as short:
        await inventory.Reserve(
            pb.ReserveRequest(reference_id=str(uuid.uuid4()), lines=lines), metadata=SERVICE
        )
    assert short.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await inventory.GetStock(pb.GetStockRequest(variant_id="nope"), metadata=SERVICE)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_calls_need_a_staff_token_or_a_service_key(
    inventory: Stub, database: Database, settings: Settings
) -> None:
    variant_id = str(await create_variant(database, stock=1))
    request = pb.GetStockRequest(variant_id=variant_id)
    for metadata, code in (
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (bearer("wrong-key"), grpc.StatusCode.UNAUTHENTICATED),
        (
            bearer(issue_access_token(settings, uuid.uuid4(), Role.CUSTOMER)),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await inventory.GetStock(request, metadata=metadata)
        assert refused.value.code() == code
    staff = issue_access_token(settings, uuid.uuid4(), Role.STAFF)
    assert (await inventory.GetStock(request, metadata=bearer(staff))).available == 1


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> reflection_pb2.ServerReflectionRequest:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for answer in stub.ServerReflectionInfo(ask()):
        names = {service.name for service in answer.list_services_response.service}
        break
    assert {"agora.inventory.v1.InventoryService", "grpc.health.v1.Health"} <= names


async def test_watch_stock_streams_committed_changes(inventory: Stub, database: Database) -> None:
    variant_id = str(await create_variant(database, stock=5))
    stream = inventory.WatchStock(pb.WatchStockRequest(variant_ids=[variant_id]), metadata=SERVICE)
    first = await asyncio.wait_for(stream.read(), 10)
    assert first.available == 5
    await inventory.SetStock(
        pb.SetStockRequest(variant_id=variant_id, quantity=9), metadata=SERVICE
    )
    changed = await asyncio.wait_for(stream.read(), 10)
    assert changed.available == 9
    stream.cancel()


async def test_reserve_over_grpc_and_http_together_never_oversells(
    inventory: Stub, database: Database, settings: Settings, api_server: object
) -> None:
    stock, buyers = 25, 120
    variant_id = str(await create_variant(database, stock=stock))
    staff = await create_user(database, settings, Role.STAFF)
    server = api_server()  # type: ignore[operator]
    lines = [pb.ReserveLine(variant_id=variant_id, quantity=1)]

    async def over_grpc() -> bool:
        try:
            await inventory.Reserve(
                pb.ReserveRequest(reference_id=str(uuid.uuid4()), lines=lines), metadata=SERVICE
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return False
        return True

    async def over_http(http: httpx.AsyncClient) -> bool:
        body = {
            "reference_id": str(uuid.uuid4()),
            "lines": [{"variant_id": variant_id, "quantity": 1}],
        }
        response = await http.post("/api/v1/stock-reservations", json=body, headers=staff.headers)
        assert response.status_code in (201, 409), response.text
        return response.status_code == 201

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        calls = [over_grpc() if index % 2 else over_http(http) for index in range(buyers)]
        results = await asyncio.gather(*calls)
    assert sum(results) == stock
    final = await stock_of(database, uuid.UUID(variant_id))
    assert (final.available, final.levels[0].reserved) == (0, stock)
