"""Checkout throughput: cart → order on the embedded services, against ``/healthz`` in one run.

Each checkout is what a storefront sends: open the buyer's cart, add an item, place the order
with an ``Idempotency-Key`` (stock reserved, order and outbox event written, auto-cancel
scheduled). Every client is its own buyer, so the load is many buyers at once on one hot variant,
the case the reservation has to survive. A second scenario resends each buyer's finished checkout
with its key: the cost of answering a retry from the stored response. The baseline is ``/healthz``
on the same server in the same run.

    .venv/bin/python -m bench.checkout [--concurrency 32] [--duration 5] [--workers 1]
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from agora.accounts.models import User
from agora.core.embedded import ServiceUrls
from agora.core.security import Role
from bench.harness import (
    LoadResult,
    Request,
    access_token,
    agora_env,
    agora_server,
    bearer,
    bench_services,
    free_port,
    get,
    load_arguments,
    load_options,
    print_table,
    run_load,
)
from bench.seeding import connected, published_variant

ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
STOCK = 1_000_000_000


async def seed(urls: ServiceUrls, buyers: int) -> tuple[uuid.UUID, list[dict[str, str]]]:
    """A published variant with plenty of stock, and ``buyers`` users; their auth headers."""
    user_ids = [uuid.uuid4() for _ in range(buyers)]
    async with connected(urls) as (database, redis), database.unit_of_work() as session:
        session.add_all(
            User(id=user_id, email=f"{user_id.hex}@bench.example", password_hash="-")  # noqa: S106
            for user_id in user_ids
        )
        variant_id = await published_variant(session, redis, "Bench tee", STOCK)
    return variant_id, [bearer(access_token(Role.CUSTOMER, user_id)) for user_id in user_ids]


async def _place(
    session: aiohttp.ClientSession, headers: dict[str, str], variant_id: uuid.UUID, key: str
) -> tuple[int, str]:
    """Open the cart, add an item, order it; the order's status code and the cart's id."""
    async with session.post("/api/v1/carts", headers=headers) as response:
        cart_id: str = (await response.json())["id"]
    item = {"variant_id": str(variant_id), "quantity": 1}
    async with session.post(f"/api/v1/carts/{cart_id}/items", json=item, headers=headers) as added:
        await added.read()
    body = {"cart_id": cart_id, "shipping_address": ADDRESS}
    async with session.post(
        "/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": key}
    ) as placed:
        await placed.read()
        return placed.status, cart_id


def checkout(variant_id: uuid.UUID, buyers: asyncio.Queue[dict[str, str]]) -> Request:
    """One whole checkout by a buyer no other client is using at that moment."""

    async def send(session: aiohttp.ClientSession, _: int) -> int:
        headers = await buyers.get()
        try:
            status, _cart_id = await _place(session, headers, variant_id, uuid.uuid4().hex)
            return status
        finally:
            buyers.put_nowait(headers)

    return send


Replay = tuple[dict[str, str], str, dict[str, object]]


def replay(checkouts: asyncio.Queue[Replay]) -> Request:
    """The retry of a checkout that succeeded, answered from its stored response. Each client
    replays its own buyer's key: one key sent twice at once is a 409 by design."""

    async def send(session: aiohttp.ClientSession, _: int) -> int:
        headers, key, body = await checkouts.get()
        try:
            async with session.post(
                "/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": key}
            ) as response:
                await response.read()
                return response.status
        finally:
            checkouts.put_nowait((headers, key, body))

    return send


async def completed_checkouts(
    base_url: str, buyers: list[dict[str, str]], variant_id: uuid.UUID
) -> asyncio.Queue[Replay]:
    """One finished checkout per buyer: what a replay resends."""
    checkouts: asyncio.Queue[Replay] = asyncio.Queue()
    async with aiohttp.ClientSession(base_url) as session:
        for headers in buyers:
            key = uuid.uuid4().hex
            status, cart_id = await _place(session, headers, variant_id, key)
            if status != 201:
                raise RuntimeError(f"checkout failed with status {status}")
            body: dict[str, object] = {"cart_id": cart_id, "shipping_address": ADDRESS}
            checkouts.put_nowait((headers, key, body))
    return checkouts


def main() -> None:
    """Seed buyers, measure the baseline, checkouts and replays on one server, print the table."""
    parser = load_arguments(__doc__)
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    args = parser.parse_args()
    load = load_options(args)

    urls = bench_services()
    variant_id, buyer_headers = asyncio.run(seed(urls, args.concurrency))
    env = agora_env(urls)
    with agora_server(env, free_port(), workers=args.workers) as url:

        async def measure() -> tuple[LoadResult, LoadResult, LoadResult]:
            baseline = await run_load("/healthz (baseline)", url, get("/healthz"), **load)
            pool: asyncio.Queue[dict[str, str]] = asyncio.Queue()
            for headers in buyer_headers:
                pool.put_nowait(headers)
            checkouts = await run_load(
                "checkout: cart + item + order", url, checkout(variant_id, pool), **load
            )
            done = await completed_checkouts(url, buyer_headers, variant_id)
            replays = await run_load("order replay (Idempotency-Key)", url, replay(done), **load)
            return baseline, checkouts, replays

        baseline, checkouts, replays = asyncio.run(measure())
    print_table(
        f"Checkout: {args.workers} uvicorn worker(s), {args.concurrency} clients (one buyer "
        f"each), {args.duration:.0f}s each; a checkout is 3 requests",
        [checkouts, replays],
        baseline,
    )


if __name__ == "__main__":
    main()
