"""The snapshot feed on a real server: staff only (the token offered as a subprotocol, never read
from the URL), whole snapshots within the size budget, a range switch answered at once, an
expired token closed with 4401; the crawl and price-watch parts capped whatever the frontier and
the tables hold."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.core.serialization import dumps
from agora.crawler.frontier import Frontier, HostPolicy, canonical_url
from agora.dashboard import crawl_panels
from agora.dashboard.feed import TOKEN_EXPIRED
from agora.dashboard.ranges import DEFAULT_RANGE
from agora.dashboard.snapshot import MAX_SNAPSHOT_BYTES, SNAPSHOT_INTERVAL_S, encode
from agora.pricewatch import repository
from agora.pricewatch import service as pricewatch
from agora.settings import Settings
from tests.dashboard.support import LogLoaderProcess, ship
from tests.factories import create_user, create_variant
from tests.support import ApiProcess

RECEIVE_TIMEOUT_S = 15


def open_feed(server: ApiProcess, token: str, time_range: str = "15m") -> Any:
    """The feed, ``token`` offered as a subprotocol."""
    return server.socket(f"/ws/dashboard?range={time_range}", token)


async def next_snapshot(socket: Any) -> dict[str, Any]:
    """The next message, checked against the size budget."""
    message = await asyncio.wait_for(socket.recv(), RECEIVE_TIMEOUT_S)
    assert len(message.encode()) <= MAX_SNAPSHOT_BYTES
    snapshot: dict[str, Any] = json.loads(message)
    return snapshot


async def read_until_closed(socket: Any) -> None:
    """Read snapshots until the server closes the socket."""
    while True:
        await next_snapshot(socket)


async def test_staff_receive_whole_snapshots_and_switch_ranges(
    server: ApiProcess, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    await create_variant(database, stock=3)
    token = staff.headers["Authorization"].removeprefix("Bearer ")

    async with open_feed(server, token) as socket:
        assert socket.subprotocol == "agora"
        first = await next_snapshot(socket)
        second = await next_snapshot(socket)
        await socket.send(json.dumps({"type": "range", "range": "7d"}))
        while (switched := await next_snapshot(socket))["range"] != "7d":
            pass

    assert SNAPSHOT_INTERVAL_S <= 2
    assert first["type"] == second["type"] == "snapshot"
    assert first["range"] == "15m"
    assert first["step"] == 60
    assert len(first["commerce"]["orders_series"]) == 15
    assert first["commerce"]["orders_per_minute"] == 0
    assert {queue["name"] for queue in first["queues"]} >= {"outbox", "flash_sale_tickets"}
    assert switched["step"] == 3 * 3600
    assert len(switched["commerce"]["orders_series"]) == 56


async def test_a_customer_never_gets_a_socket(
    server: ApiProcess, database: Database, settings: Settings
) -> None:
    customer = await create_user(database, settings)
    token = customer.headers["Authorization"].removeprefix("Bearer ")

    for refused_feed in (open_feed(server, token), open_feed(server, "not-a-token")):
        with pytest.raises(InvalidStatus) as refused:
            async with refused_feed:
                pass
        assert refused.value.response.status_code == 403


async def test_a_token_in_the_url_does_not_authenticate(
    server: ApiProcess, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    token = staff.headers["Authorization"].removeprefix("Bearer ")

    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/dashboard?token={token}"):
            pass
    assert refused.value.response.status_code == 403


async def test_an_expired_token_closes_the_feed_with_4401(
    server: ApiProcess, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    short = issue_access_token(
        settings.model_copy(update={"access_token_ttl": 2}), staff.id, Role.STAFF
    )

    async with open_feed(server, short) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(socket)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == TOKEN_EXPIRED


def test_an_oversized_snapshot_is_trimmed_to_the_budget() -> None:
    snapshot = {
        "type": "snapshot",
        "series": list(range(60)),
        "logs": {"routes": [{"route": f"/api/v1/r{n}", "count": n} for n in range(2000)]},
        "commerce": {
            "callbacks": [{"provider": "p", "outcome": "o", "count": n} for n in range(50)]
        },
    }

    message = encode(snapshot)

    assert len(message) <= MAX_SNAPSHOT_BYTES
    decoded = json.loads(message)
    assert decoded["truncated"] is True
    assert decoded["series"] == list(range(60))
    assert 0 < len(decoded["logs"]["routes"]) < 2000


async def test_crawl_and_price_watch_parts_stay_small_whatever_they_hold(
    app: FastAPI, database: Database, frontier: Frontier
) -> None:
    long = "a-rather-long-label-" * 10
    for n in range(3 * crawl_panels.MAX_HOSTS):
        host = f"{long}{n}.example"
        await frontier.configure_host(host, HostPolicy())
        await frontier.add([canonical_url(f"http://{host}/p")])
    variant_id = await create_variant(database, price=100_000)
    pages = [(f"http://shop.example/{long * 8}/{n}", variant_id) for n in range(30)]
    async with database.unit_of_work() as session:
        terms = pricewatch.SiteTerms("http://shop.example/", 0, 1, 60, 60)
        await pricewatch.create_site(session, frontier, terms)
        targets = await pricewatch.add_targets(session, frontier, pages)
        for price in (900, 800):
            await repository.record_changes(
                session,
                [
                    repository.NewReading(t.id, price + n, "EUR", True)
                    for n, t in enumerate(targets)
                ],
            )
    services = app.state.services
    now = dt.datetime.now(dt.UTC)

    crawl = await crawl_panels.crawl_section(services, now, DEFAULT_RANGE)
    watch = await crawl_panels.pricewatch_section(services, now, DEFAULT_RANGE)

    assert len(crawl["crawl"]["hosts"]) == crawl_panels.MAX_HOSTS
    assert crawl["crawl"]["hosts_total"] == 3 * crawl_panels.MAX_HOSTS + 1  # and shop.example
    assert len(watch["pricewatch"]["undercuts"]) == crawl_panels.MAX_UNDERCUTS
    changes = watch["pricewatch"]["changes"]
    assert len(changes) == crawl_panels.MAX_CHANGES
    assert (changes[0]["previous"], changes[0]["price"]) == (900 + 29, 800 + 29)
    assert len(dumps(crawl)) + len(dumps(watch)) <= MAX_SNAPSHOT_BYTES // 2


async def test_log_figures_come_from_the_log_platform(
    server: ApiProcess, log_loader: LogLoaderProcess, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    token = staff.headers["Authorization"].removeprefix("Bearer ")
    lines = [
        {"path": "/api/v1/products/42", "method": "GET", "status": 200, "duration_ms": 20.0,
         "ip": "198.51.100.7", "service": "edge"}
        for _ in range(30)
    ] + [
        {"path": "/api/v1/orders", "method": "POST", "status": 503, "duration_ms": 900.0,
         "ip": "198.51.100.8", "service": "edge"}
        for _ in range(10)
    ] + [{"message": "order paid", "service": "edge", "level": "info"}]  # fmt: skip
    async with httpx.AsyncClient(base_url=server.base_url, headers=staff.headers) as http:
        await ship(http, *lines)

    async with open_feed(server, token) as socket:
        while not (snapshot := await next_snapshot(socket))["rankings"]["top_paths"]:
            pass
        while sum((figures := snapshot["logs"])["series"]["requests"]) < 40:
            snapshot = await next_snapshot(socket)

    assert 0 < figures["error_rate"] <= 10 / 40
    assert figures["requests_per_second"] > 0
    assert figures["p99"] > figures["p50"] > 0
    routes = {route["route"]: route for route in figures["routes"]}
    assert routes["/api/v1/orders"]["count"] == 10
    assert routes["/api/v1/orders"]["error_rate"] == 1.0
    rankings = snapshot["rankings"]
    assert rankings["top_paths"][0] == {"value": "/api/v1/products/42", "count": 30}
    assert {entry["value"] for entry in rankings["top_ips"]} >= {"198.51.100.7", "198.51.100.8"}
    assert {entry["value"] for entry in rankings["status_codes"]} >= {"200", "503"}
