"""The production shape under real load, through nginx: two API processes share one truth.

Each test drives the stack of ``conftest.py`` from outside, as clients and operators would: the
answers must be those of one system, whichever process served each request.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import orjson
from sqlalchemy import func, select

from agora.flashsale.models import FlashSaleTicket, TicketStatus
from agora.inventory.models import ReservationStatus, StockReservation
from agora.orders.models import Order
from tests.flashsale.support import API, buyers, published_variant, sale_body, staff
from tests.orders.support import ADDRESS
from tests.scale.conftest import PAYMENT_TIMEOUT_S, Stack
from tests.support import wait_for

RACE_BUYERS = 2000
RACE_UNITS = 150
CHECKOUT_CLIENTS = 24


async def test_flash_sale_race_over_both_processes_sells_exactly_the_quantity(
    stack: Stack,
) -> None:
    variant_id = await published_variant(stack.database, stack.redis, stock=RACE_UNITS + 50)
    buyer_headers = await buyers(stack.database, stack.settings, RACE_BUYERS)
    async with aiohttp.ClientSession(stack.base_url) as session:
        created = await session.post(
            f"{API}/flash-sales",
            json=sale_body(variant_id, RACE_UNITS),
            headers=await staff(stack.database, stack.settings),
        )
        assert created.status == 201, await created.text()
        sale_id = (await created.json())["id"]
    statuses: Counter[int] = Counter()
    ticket_owners: dict[str, str] = {}
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(stack.base_url, connector=connector) as session:

        async def buy(headers: dict[str, str]) -> None:
            async with session.post(
                f"{API}/flash-sales/{sale_id}/purchase", json={"quantity": 1}, headers=headers
            ) as response:
                statuses[response.status] += 1
                if response.status == 202:
                    ticket_owners[(await response.json())["ticket_id"]] = headers["Authorization"]

        await asyncio.gather(*(buy(headers) for headers in buyer_headers))

    assert statuses == {202: RACE_UNITS, 409: RACE_BUYERS - RACE_UNITS}, statuses
    assert len(set(ticket_owners.values())) == RACE_UNITS
    upstreams = {
        line["upstream_addr"]
        for line in stack.access_log()
        if str(line["uri"]).endswith(f"{sale_id}/purchase")
    }
    assert upstreams == {url.removeprefix("http://") for url in stack.api_urls}

    async def every_ticket_ordered() -> bool:
        async with stack.database.unit_of_work() as db:
            ordered = await db.scalar(
                select(func.count())
                .select_from(FlashSaleTicket)
                .where(
                    FlashSaleTicket.sale_id == uuid.UUID(sale_id),
                    FlashSaleTicket.status == TicketStatus.ORDERED,
                    FlashSaleTicket.order_id.is_not(None),
                )
            )
        return ordered == RACE_UNITS

    await wait_for(every_ticket_ordered, timeout=120, interval=0.5)


async def test_an_event_caused_on_one_process_reaches_a_socket_on_the_other(
    stack: Stack,
) -> None:
    variant_id = await published_variant(stack.database, stack.redis, stock=5)
    [buyer] = await buyers(stack.database, stack.settings, 1)
    token = buyer["Authorization"].removeprefix("Bearer ")
    socket_url = stack.api_urls[0].replace("http://", "ws://") + "/ws"
    protocols = ("agora", f"bearer.{token}")  # the token never goes in the URL
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(socket_url, protocols=protocols) as socket,
    ):
        async with httpx.AsyncClient(base_url=stack.api_urls[1]) as other:
            order_id = await _checkout(other, buyer, variant_id)
        message = await asyncio.wait_for(socket.receive_json(), timeout=30)
    assert order_id in str(message)


async def test_a_live_tail_on_one_process_sees_lines_ingested_through_either(
    stack: Stack,
) -> None:
    headers = await staff(stack.database, stack.settings)
    service = f"scale{uuid.uuid4().hex[:12]}"
    query = urlencode({"q": f"service:{service}"})
    tail_url = stack.api_urls[0].replace("http://", "ws://") + f"/ws/logs?{query}"
    protocols = ("agora", f"bearer.{headers['Authorization'].removeprefix('Bearer ')}")
    seen: set[str] = set()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(tail_url, protocols=protocols) as socket,
    ):
        await asyncio.sleep(0.5)  # the tail starts from now
        for index, api_url in enumerate(stack.api_urls):
            async with httpx.AsyncClient(base_url=api_url) as client:
                shipped = await client.post(
                    f"{API}/logs",
                    content=orjson.dumps({"service": service, "message": f"through {index}"}),
                    headers={**headers, "Content-Type": "application/x-ndjson"},
                )
            assert shipped.status_code == 202, shipped.text
        async with asyncio.timeout(30):
            while len(seen) < len(stack.api_urls):
                message = await socket.receive_json()
                if message["type"] == "line":
                    seen.add(message["line"]["message"])
    assert seen == {"through 0", "through 1"}


async def test_a_catalog_write_on_one_process_is_read_fresh_on_the_other(stack: Stack) -> None:
    headers = await staff(stack.database, stack.settings)
    writer = httpx.AsyncClient(base_url=stack.api_urls[0], headers=headers)
    reader = httpx.AsyncClient(base_url=stack.api_urls[1])
    proxy = httpx.AsyncClient(base_url=stack.base_url)
    async with writer, reader, proxy:
        created = await writer.post(
            f"{API}/products",
            json={
                "name": "Scale kettle",
                "status": "published",
                "variants": [
                    {
                        "sku": f"K-{uuid.uuid4().hex[:8]}",
                        "price": {"amount": 2500, "currency": "EUR"},
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
        product_id = created.json()["id"]
        assert (await reader.get(f"{API}/products/{product_id}")).json()["name"] == "Scale kettle"
        renamed = await writer.patch(f"{API}/products/{product_id}", json={"name": "Scale pot"})
        assert renamed.status_code == 200, renamed.text

        async def fresh() -> bool:
            response = await reader.get(f"{API}/products/{product_id}")
            return bool(response.json()["name"] == "Scale pot")

        await wait_for(fresh, timeout=2, interval=0.05)
        first = await proxy.get(f"{API}/products/{product_id}")
        etag = first.headers["etag"]
        again = await proxy.get(f"{API}/products/{product_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag


async def test_prometheus_sums_the_replicas(stack: Stack) -> None:
    route = f"{API}/categories"  # the metrics label: the route's template
    for index, url in enumerate(stack.api_urls):
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(3 + 4 * index):
                assert (await client.get(route)).status_code == 200
    per_replica = [await _served(url, route) for url in stack.api_urls]
    assert all(count >= 3 for count in per_replica), per_replica
    query = f'sum(agora_http_requests_total{{job="agora-api",route="{route}"}})'

    async def summed() -> bool:
        return await _prometheus_value(stack, query) == sum(per_replica)

    await wait_for(summed, timeout=30, interval=1)
    assert await _prometheus_value(stack, 'count(up{job="agora-api"} == 1)') == 2
    assert await _prometheus_value(stack, 'count(up{job="agora-worker"} == 1)') == 2


async def test_a_killed_api_process_loses_no_acknowledged_order(stack: Stack) -> None:
    variant_id = await published_variant(stack.database, stack.redis, stock=100_000)
    clients = await buyers(stack.database, stack.settings, CHECKOUT_CLIENTS)
    killed_pid = stack.pid("api-1")
    created: list[str] = []
    failures: Counter[str] = Counter()
    stop_at = time.monotonic() + 12

    async def shopper(buyer: dict[str, str]) -> None:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            while time.monotonic() < stop_at:
                try:
                    created.append(await _checkout(client, buyer, variant_id))
                except (httpx.HTTPError, AssertionError) as error:
                    failures[type(error).__name__] += 1

    async def kill_midway() -> None:
        await asyncio.sleep(4)
        os.kill(killed_pid, signal.SIGKILL)

    await asyncio.gather(kill_midway(), *(shopper(buyer) for buyer in clients))

    assert len(created) > CHECKOUT_CLIENTS
    async with stack.database.unit_of_work() as db:
        stored = await db.scalar(
            select(func.count()).select_from(Order).where(Order.id.in_(created))
        )
    assert stored == len(created), failures

    async def restarted() -> bool:
        if stack.pid("api-1") == killed_pid:
            return False
        async with httpx.AsyncClient(base_url=stack.api_urls[0]) as client:
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

    await wait_for(restarted, timeout=60, interval=0.5)

    async def no_hold_outlived_its_order() -> bool:
        async with stack.database.unit_of_work() as db:
            held = await db.scalar(
                select(func.count())
                .select_from(StockReservation)
                .where(
                    StockReservation.variant_id == variant_id,
                    StockReservation.status == ReservationStatus.HELD,
                )
            )
        return held == 0

    await wait_for(no_hold_outlived_its_order, timeout=PAYMENT_TIMEOUT_S + 30, interval=1)


async def test_the_login_limit_is_one_budget_across_processes(stack: Stack) -> None:
    answers: list[int] = []
    for attempt in range(24):
        url = stack.api_urls[attempt % 2]
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.post(
                f"{API}/auth/token",
                data={"username": f"nobody-{attempt}@example.com", "password": "wrong-password"},
            )
        answers.append(response.status_code)
    first_refusal = answers.index(429)
    assert set(answers[:first_refusal]) == {401}
    assert set(answers[first_refusal:]) == {429}
    assert first_refusal <= 12, answers


async def _checkout(client: httpx.AsyncClient, buyer: dict[str, str], variant_id: uuid.UUID) -> str:
    cart = await client.post(f"{API}/carts", headers=buyer)
    assert cart.status_code in (200, 201), cart.text
    cart_id = cart.json()["id"]
    item = await client.post(
        f"{API}/carts/{cart_id}/items",
        json={"variant_id": str(variant_id), "quantity": 1},
        headers=buyer,
    )
    assert item.status_code == 201, item.text
    order = await client.post(
        f"{API}/orders",
        json={"cart_id": cart_id, "shipping_address": ADDRESS},
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    order_id: str = order.json()["id"]
    return order_id


async def _served(api_url: str, route: str) -> float:
    async with httpx.AsyncClient(base_url=api_url) as client:
        text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("agora_http_requests_total{") and f'route="{route}"' in line
    )


async def _prometheus_value(stack: Stack, query: str) -> float | None:
    async with httpx.AsyncClient(base_url=stack.prometheus_url) as client:
        body: dict[str, Any] = (await client.get("/api/v1/query", params={"query": query})).json()
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None
