"""Idempotency keys: replay, reuse with another body, scope, expiry, rollback, in flight."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update

from agora.core.db import Database
from agora.core.errors import Conflict
from agora.core.idempotency import (
    IdempotencyRecord,
    IdempotentRequest,
    StoredResponse,
    fingerprint,
    purge_expired,
    respond_once,
)
from agora.orders.models import Order
from agora.settings import Settings
from tests.factories import create_user, create_variant
from tests.orders.support import fill_cart, order_cart


class Rollback(Exception):
    """Aborts a unit of work."""


def test_fingerprint_ignores_json_key_order_and_spacing() -> None:
    one = fingerprint("POST", "/api/v1/orders", b'{"a": 1, "b": [1, 2]}')
    assert one == fingerprint("post", "/api/v1/orders", b'{"b":[1,2],"a":1}')
    assert one != fingerprint("POST", "/api/v1/orders", b'{"a": 2, "b": [1, 2]}')
    assert one != fingerprint("POST", "/api/v1/payments", b'{"a": 1, "b": [1, 2]}')


async def test_same_key_and_body_replays_the_first_order(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    cart_id = await fill_cart(client, buyer, {variant: 1})

    first = await order_cart(client, buyer, cart_id, key="checkout-1")
    replay = await order_cart(client, buyer, cart_id, key="checkout-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["location"] == first.headers["location"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    async with database.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1


async def test_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    cart_id = await fill_cart(client, buyer, {variant: 1})
    assert (await order_cart(client, buyer, cart_id, key="k")).status_code == 201

    reused = await order_cart(client, buyer, cart_id, key="k", voucher_code="OTHER")

    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    alice, bob = await create_user(database, settings), await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    alice_order = await order_cart(
        client, alice, await fill_cart(client, alice, {variant: 1}), key="same"
    )
    bob_order = await order_cart(
        client, bob, await fill_cart(client, bob, {variant: 1}), key="same"
    )

    assert alice_order.status_code == bob_order.status_code == 201
    assert alice_order.json()["id"] != bob_order.json()["id"]


async def test_a_failed_request_stores_nothing_and_a_retry_runs_again(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    variant = await create_variant(database, stock=5)
    cart_id = await fill_cart(client, buyer, {variant: 1})

    failed = await order_cart(client, buyer, cart_id, key="retry", voucher_code="NOPE")
    retried = await order_cart(client, buyer, cart_id, key="retry", voucher_code="NOPE")

    assert failed.status_code == retried.status_code == 422
    assert "idempotent-replayed" not in retried.headers


async def test_malformed_key_is_422(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    buyer = await create_user(database, settings)
    response = await order_cart(client, buyer, str(uuid.uuid4()), key="x" * 256)
    assert response.status_code == 422


async def test_key_held_by_a_running_request_is_409(database: Database) -> None:
    request = IdempotentRequest("busy", fingerprint("POST", "/x", b"{}"))

    async def never() -> StoredResponse:
        raise AssertionError("the second request must not run")

    async def produce_while_another_arrives() -> StoredResponse:
        async with database.unit_of_work() as other:
            with pytest.raises(Conflict) as refused:
                await respond_once(other, request, "user:1", never)
        assert refused.value.instance_code == "idempotency_key_in_flight"
        assert refused.value.headers["Retry-After"] == "1"
        return StoredResponse(201, b"{}")

    async with database.unit_of_work() as session:
        await respond_once(session, request, "user:1", produce_while_another_arrives)


async def test_rolled_back_answer_is_never_replayed(database: Database) -> None:
    request = IdempotentRequest("k", fingerprint("POST", "/x", b"{}"))

    async def answer() -> StoredResponse:
        return StoredResponse(201, b'{"first": true}')

    async def answer_then_fail() -> None:
        async with database.unit_of_work() as session:
            await respond_once(session, request, "user:1", answer)
            raise Rollback

    with pytest.raises(Rollback):
        await answer_then_fail()

    async def second() -> StoredResponse:
        return StoredResponse(201, b'{"second": true}')

    async with database.unit_of_work() as session:
        stored = await respond_once(session, request, "user:1", second)
    assert (stored.body, stored.is_replay) == (b'{"second": true}', False)


async def test_expired_keys_run_again_and_are_purged(database: Database) -> None:
    request = IdempotentRequest("old", fingerprint("POST", "/x", b"{}"))

    async def answer() -> StoredResponse:
        return StoredResponse(201, b"{}")

    async with database.unit_of_work() as session:
        await respond_once(session, request, "user:1", answer)
        await respond_once(session, IdempotentRequest("new", request.fingerprint), "user:1", answer)
    async with database.unit_of_work() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old")
            .values(expires_at=func.now() - dt.timedelta(seconds=1))
        )
    async with database.unit_of_work() as session:
        again = await respond_once(session, request, "user:1", answer)
    assert not again.is_replay

    async with database.unit_of_work() as session:
        await session.execute(
            update(IdempotencyRecord).values(expires_at=func.now() - dt.timedelta(seconds=1))
        )
    async with database.unit_of_work() as session:
        assert await purge_expired(session) == 2
