"""The flash-sale API in-process: scheduling, the purchase decisions, reads, and their rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
from redis.asyncio import Redis

from agora.core.db import Database
from agora.inventory import service as inventory
from agora.settings import Settings
from tests.flashsale.support import (
    API,
    buyers,
    create_sale,
    published_variant,
    sale_body,
    staff,
)
from tests.support import QueryCounter, served


async def test_staff_schedule_a_sale_whose_units_leave_regular_stock(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=30)
    headers = await staff(database, settings)

    response = await client.post(
        f"{API}/flash-sales", json=sale_body(variant_id, 10, per_user_limit=2), headers=headers
    )

    assert response.status_code == 201, response.text
    sale = response.json()
    assert response.headers["Location"] == f"{API}/flash-sales/{sale['id']}"
    assert (sale["quantity"], sale["remaining"], sale["per_user_limit"]) == (10, 10, 2)
    assert sale["price"] == {"amount": 999, "currency": "EUR"}
    async with database.unit_of_work() as session:
        assert (await inventory.variant_stock(session, variant_id)).available == 20
    read = await client.get(f"{API}/flash-sales/{sale['id']}")
    assert read.json()["remaining"] == 10


async def test_a_sale_needs_staff_valid_terms_and_stock(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=5)
    headers = await staff(database, settings)
    [customer] = await buyers(database, settings, 1)
    now = dt.datetime.now(dt.UTC)

    as_customer = await client.post(
        f"{API}/flash-sales", json=sale_body(variant_id, 1), headers=customer
    )
    backwards = await client.post(
        f"{API}/flash-sales",
        json=sale_body(variant_id, 1, ends_at=(now - dt.timedelta(hours=1)).isoformat()),
        headers=headers,
    )
    naive = await client.post(
        f"{API}/flash-sales",
        json=sale_body(variant_id, 1, starts_at="2030-01-01T10:00:00"),
        headers=headers,
    )
    too_many = await client.post(
        f"{API}/flash-sales", json=sale_body(variant_id, 6), headers=headers
    )
    other_currency = await client.post(
        f"{API}/flash-sales",
        json=sale_body(variant_id, 1, price={"amount": 5, "currency": "USD"}),
        headers=headers,
    )
    unknown = await client.post(
        f"{API}/flash-sales", json=sale_body(uuid.uuid4(), 1), headers=headers
    )

    assert as_customer.status_code == 403
    assert backwards.status_code == 422
    assert naive.status_code == 422
    assert (too_many.status_code, too_many.json()["code"]) == (409, "out_of_stock")
    assert (other_currency.status_code, other_currency.json()["code"]) == (
        422,
        "currency_mismatch",
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "variant_not_found")
    async with database.unit_of_work() as session:
        assert (await inventory.variant_stock(session, variant_id)).available == 5


async def test_purchase_takes_units_within_the_limit_until_sold_out(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(
        client, await staff(database, settings), sale_body(variant_id, 3, per_user_limit=2)
    )
    first, second = await buyers(database, settings, 2)
    url = f"{API}/flash-sales/{sale['id']}/purchase"

    two = await client.post(url, json={"quantity": 2}, headers=first)
    over_limit = await client.post(url, json={"quantity": 1}, headers=first)
    too_many = await client.post(url, json={"quantity": 2}, headers=second)
    last = await client.post(url, json={"quantity": 1}, headers=second)
    sold_out = await client.post(url, json={"quantity": 1}, headers=second)

    assert two.status_code == 202, two.text
    ticket_id = two.json()["ticket_id"]
    assert two.headers["Location"] == f"{API}/flash-sales/{sale['id']}/tickets/{ticket_id}"
    assert (over_limit.status_code, over_limit.json()["code"]) == (409, "limit_reached")
    assert (too_many.status_code, too_many.json()["code"]) == (409, "sold_out")
    assert last.status_code == 202
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "sold_out")
    read = await client.get(f"{API}/flash-sales/{sale['id']}")
    assert read.json()["remaining"] == 0
    ticket = await client.get(f"{API}/flash-sales/{sale['id']}/tickets/{ticket_id}", headers=first)
    assert ticket.status_code == 200
    assert (ticket.json()["status"], ticket.json()["quantity"]) == ("queued", 2)


async def test_purchase_outside_the_window_is_refused(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    headers = await staff(database, settings)
    now = dt.datetime.now(dt.UTC)
    later = await create_sale(
        client,
        headers,
        sale_body(
            variant_id,
            1,
            starts_at=(now + dt.timedelta(hours=1)).isoformat(),
            ends_at=(now + dt.timedelta(hours=2)).isoformat(),
        ),
    )
    brief = await create_sale(
        client,
        headers,
        sale_body(variant_id, 1, ends_at=(now + dt.timedelta(seconds=1)).isoformat()),
    )
    [buyer] = await buyers(database, settings, 1)
    await asyncio.sleep(
        max(0.0, (now + dt.timedelta(seconds=1.1) - dt.datetime.now(dt.UTC)).total_seconds())
    )

    early = await client.post(f"{API}/flash-sales/{later['id']}/purchase", json={}, headers=buyer)
    late = await client.post(f"{API}/flash-sales/{brief['id']}/purchase", json={}, headers=buyer)
    unknown = await client.post(
        f"{API}/flash-sales/{uuid.uuid4()}/purchase", json={}, headers=buyer
    )

    assert (early.status_code, early.json()["code"]) == (409, "not_started")
    assert (late.status_code, late.json()["code"]) == (409, "ended")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "flash_sale_not_found")


async def test_purchase_and_sale_reads_send_no_sql(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    query_counter: QueryCounter,
    redis: Redis,
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(client, await staff(database, settings), sale_body(variant_id, 5))
    [buyer] = await buyers(database, settings, 1)
    query_counter.reset()

    bought = await client.post(f"{API}/flash-sales/{sale['id']}/purchase", json={}, headers=buyer)
    read = await client.get(f"{API}/flash-sales/{sale['id']}")
    ticket = await client.get(
        f"{API}/flash-sales/{sale['id']}/tickets/{bought.json()['ticket_id']}", headers=buyer
    )

    assert (bought.status_code, read.status_code, ticket.status_code) == (202, 200, 200)
    assert query_counter.count == 0, query_counter.statements


async def test_idempotency_key_replays_the_ticket(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(
        client, await staff(database, settings), sale_body(variant_id, 5, per_user_limit=3)
    )
    [buyer] = await buyers(database, settings, 1)
    url = f"{API}/flash-sales/{sale['id']}/purchase"
    headers = {**buyer, "Idempotency-Key": "buy-once"}

    first = await client.post(url, json={"quantity": 1}, headers=headers)
    again = await client.post(url, json={"quantity": 1}, headers=headers)
    other_body = await client.post(url, json={"quantity": 2}, headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (other_body.status_code, other_body.json()["code"]) == (422, "idempotency_key_reused")
    assert (await client.get(f"{API}/flash-sales/{sale['id']}")).json()["remaining"] == 4


async def test_a_ticket_is_seen_by_its_buyer_and_staff_only(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    staff_headers = await staff(database, settings)
    sale = await create_sale(client, staff_headers, sale_body(variant_id, 5))
    owner, stranger = await buyers(database, settings, 2)
    bought = await client.post(f"{API}/flash-sales/{sale['id']}/purchase", json={}, headers=owner)
    url = f"{API}/flash-sales/{sale['id']}/tickets/{bought.json()['ticket_id']}"

    assert (await client.get(url, headers=stranger)).status_code == 404
    assert (await client.get(url, headers=staff_headers)).status_code == 200
    assert (await client.get(url)).status_code == 401
    assert (
        await client.get(f"{API}/flash-sales/{sale['id']}/tickets/{uuid.uuid4()}", headers=owner)
    ).status_code == 404


async def test_purchases_are_rate_limited_per_buyer(
    database: Database, settings: Settings, redis: Redis
) -> None:
    limits = {"rate_limit_flash_sale_buyer": "2/minute"}
    answers, _ = await _purchases_under(limits, 3, database, settings, redis)

    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert "Retry-After" in answers[2].headers


async def test_a_purchase_refused_by_its_budget_takes_no_unit(
    database: Database, settings: Settings, redis: Redis
) -> None:
    limits = {"rate_limit_flash_sale_buyer": "1/minute"}
    answers, remaining = await _purchases_under(limits, 2, database, settings, redis)

    assert [answer.status_code for answer in answers] == [202, 429]
    assert remaining == 4


async def _purchases_under(
    limits: dict[str, str], attempts: int, database: Database, settings: Settings, redis: Redis
) -> tuple[list[httpx.Response], int]:
    """One buyer's ``attempts`` purchases on a sale of 5 units (5 per buyer) in an app with
    ``limits``, and the units the sale has left after them."""
    async with served(settings, **limits) as (client, _):
        variant_id = await published_variant(database, redis, stock=10)
        sale = await create_sale(
            client, await staff(database, settings), sale_body(variant_id, 5, per_user_limit=5)
        )
        [buyer] = await buyers(database, settings, 1)
        url = f"{API}/flash-sales/{sale['id']}/purchase"
        answers = [(await client.post(url, json={}, headers=buyer)) for _ in range(attempts)]
        remaining = (await client.get(f"{API}/flash-sales/{sale['id']}")).json()["remaining"]
    return answers, int(remaining)


async def test_purchases_spend_the_default_budget_too(
    database: Database, settings: Settings, redis: Redis
) -> None:
    async with served(settings, rate_limit_default="3/minute") as (client, _):
        variant_id = await published_variant(database, redis, stock=10)
        [buyer] = await buyers(database, settings, 1)
        staff_headers = await staff(database, settings)
        sale = await create_sale(client, staff_headers, sale_body(variant_id, 5, per_user_limit=5))
        url = f"{API}/flash-sales/{sale['id']}/purchase"
        answers = [(await client.post(url, json={}, headers=buyer)) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [202, 202, 202, 429]
    assert answers[3].headers["RateLimit-Policy"] == '"default";q=3;w=60'
    assert answers[3].headers["RateLimit"].startswith('"default";r=0;t=')


async def test_bad_purchase_input_is_a_422_that_takes_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings, redis: Redis
) -> None:
    variant_id = await published_variant(database, redis, stock=10)
    sale = await create_sale(client, await staff(database, settings), sale_body(variant_id, 5))
    [buyer] = await buyers(database, settings, 1)
    url = f"{API}/flash-sales/{sale['id']}/purchase"

    address = {"name": "Ada", "line1": "1 Main St", "city": "Paris", "postal_code": "75001"}
    bad_addresses = [{**address, "country": "France"}, {"name": "Ada"}, {**address, "x": 1}]
    bodies = [{"quantity": 0}, {"quantity": "many"}, {"quantity": 1, "extra": True}]
    bodies += [{"shipping_address": bad} for bad in bad_addresses]
    for body in bodies:
        assert (await client.post(url, json=body, headers=buyer)).status_code == 422
    assert (await client.post(url, content=b"{", headers=buyer)).status_code == 422
    assert (await client.post(url, json={})).status_code == 401
    assert (await client.get(f"{API}/flash-sales/{sale['id']}")).json()["remaining"] == 5
