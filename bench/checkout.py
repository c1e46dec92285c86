"""Checkout throughput: cart → order against its own SQL replayed over asyncpg, in one run.

Each checkout is what a storefront sends: open the buyer's cart, add an item, place the order
with an ``Idempotency-Key`` (stock reserved, order and outbox event written, the answer stored).
Every client is its own buyer, so the load is many buyers at once on one hot variant, the case
the reservation has to survive. The baseline (``bench/checkout_baseline.py``) is the same
checkout's statements, recorded from the app, sent in the same transactions over asyncpg with no
framework and the same concurrency: the floor the database sets. A second scenario resends each
buyer's finished checkout with its key: the cost of answering a retry from the stored response.
Last, the floor over HTTP (``bench/checkout_bare_work_app.py``): the same checkouts sent the same
way to a bare app on the same server, doing only what they cannot skip (the token, the budget
call, the same statements, a JSON answer): what this stack allows before Agora's own layers.
Beside orders/s, the CPU each order cost the API processes and the PostgreSQL server (psutil).
wrk sends Agora's checkouts (``bench/checkout_flow.py``), so the client's CPU is not taken from
the server; a latency is an order's, from its cart's opening to the order's answer.

    .venv/bin/python -m bench.checkout [--concurrency 32] [--duration 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import pickle
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import httpx
import psutil
import uvloop
from rich.console import Console
from rich.table import Table

from agora.accounts.models import User
from agora.core.embedded import ServiceUrls
from agora.core.security import Role
from agora.settings import Settings
from bench.checkout_bare_work_app import RECORDING_VARIABLE
from bench.checkout_baseline import Recording, connections, record, replay
from bench.checkout_flow import run_flow
from bench.harness import (
    BENCH_DATA_DIR,
    LoadResult,
    Request,
    access_token,
    agora_env,
    agora_server,
    app_server,
    asyncpg_dsn,
    bearer,
    bench_services,
    free_port,
    load_arguments,
)
from bench.profiling import Profile, print_packages, print_profile, profile_during
from bench.seeding import connected, published_variant
from bench.wrk import cpu_seconds_by_process

ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
STOCK = 1_000_000_000
_SETTINGS = frozenset(Settings.model_fields)
TARGET_RATE = 300
TARGET_RATIO = 0.5
BARE_WORK_APP = "bench.checkout_bare_work_app:create_app"
Sampled = tuple[Profile, int]  # a server's profile, and the orders placed while it was taken


@dataclass(frozen=True)
class Buyers:
    """The benchmark's buyers: their ids and access tokens, in the same order."""

    ids: list[uuid.UUID]
    tokens: list[str]

    @property
    def headers(self) -> list[dict[str, str]]:
        """Each buyer's auth headers."""
        return [bearer(token) for token in self.tokens]


async def seed(urls: ServiceUrls, buyers: int) -> tuple[uuid.UUID, Buyers]:
    """A published variant with plenty of stock, and ``buyers`` users."""
    user_ids = [uuid.uuid4() for _ in range(buyers)]
    async with connected(urls) as (database, redis), database.unit_of_work() as session:
        session.add_all(
            User(id=user_id, email=f"{user_id.hex}@bench.example", password_hash="-")  # noqa: S106
            for user_id in user_ids
        )
        variant_id = await published_variant(session, redis, "Bench tee", STOCK)
    tokens = [access_token(Role.CUSTOMER, user_id) for user_id in user_ids]
    return variant_id, Buyers(user_ids, tokens)


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


async def completed_checkouts(base_url: str, buyers: Buyers, variant_id: uuid.UUID) -> list[str]:
    """One finished checkout per buyer, as a retry resends it: ``"token cart_id key"``."""
    finished = []
    async with aiohttp.ClientSession(base_url) as session:
        for token, headers in zip(buyers.tokens, buyers.headers, strict=True):
            key = uuid.uuid4().hex
            status, cart_id = await _place(session, headers, variant_id, key)
            if status != 201:
                raise RuntimeError(f"checkout failed with status {status}")
            finished.append(f"{token} {cart_id} {key}")
    return finished


def bench_settings(urls: ServiceUrls) -> Settings:
    """The settings ``agora api`` runs with in this benchmark, for the app built in-process."""
    environment = agora_env(urls)
    values = {name.removeprefix("AGORA_").lower(): environment[name] for name in environment}
    return Settings(_env_file=None, **{n: v for n, v in values.items() if n in _SETTINGS})  # type: ignore[call-arg]


async def recorded_checkout(urls: ServiceUrls, variant_id: uuid.UUID, buyers: Buyers) -> Recording:
    """The statements of one checkout by the first buyer, sent through the app in-process."""
    settings = bench_settings(urls)
    key = uuid.uuid4()
    headers = buyers.headers[0]

    async def place(client: httpx.AsyncClient) -> None:
        opened = await client.post("/api/v1/carts", headers=headers)
        cart_id = opened.raise_for_status().json()["id"]
        item = {"variant_id": str(variant_id), "quantity": 1}
        added = await client.post(f"/api/v1/carts/{cart_id}/items", json=item, headers=headers)
        added.raise_for_status()
        body = {"cart_id": cart_id, "shipping_address": ADDRESS}
        keyed = {**headers, "Idempotency-Key": key.hex}
        (await client.post("/api/v1/orders", json=body, headers=keyed)).raise_for_status()

    transactions = await record(settings, place)
    # Shared by every checkout: the variant and the warehouses that stock it.
    connection = await asyncpg.connect(asyncpg_dsn(urls))
    try:
        stocked = "SELECT warehouse_id FROM stock_levels WHERE variant_id = $1"
        warehouses = {row[0] for row in await connection.fetch(stocked, variant_id)}
    finally:
        await connection.close()
    return Recording(transactions, buyers.ids[0], frozenset({variant_id, *warehouses}), key)


def _server(port: int) -> psutil.Process:
    """The server process serving ``port``, ``agora api`` or an app under ``app_server`` (its
    workers are its children)."""
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if f"--port {port} " in f"{command} " or f"port={port}," in command:
            return process
    raise RuntimeError(f"no server process on port {port}")


def _postgres() -> psutil.Process:
    """The benchmark's PostgreSQL server (its postmaster; the backends are its children)."""
    pid_file = BENCH_DATA_DIR / "postgres" / "postmaster.pid"
    return psutil.Process(int(pid_file.read_text().split()[0]))


@contextlib.contextmanager
def cpu_meter(roots: dict[str, psutil.Process]) -> Iterator[dict[str, float]]:
    """CPU seconds each process tree in ``roots`` used during the block, and under
    ``<name>:busiest`` the share of it its busiest process used (filled in at the block's end);
    processes started inside the block count whole."""
    before = {name: cpu_seconds_by_process(root) for name, root in roots.items()}
    spent: dict[str, float] = {}
    yield spent
    for name, root in roots.items():
        after = cpu_seconds_by_process(root)
        used = [cpu - before[name].get(pid, 0.0) for pid, cpu in after.items()]
        spent[name] = sum(used)
        spent[f"{name}:busiest"] = max(used) / spent[name] if spent[name] else 0.0


@dataclass
class Row:
    """One line of the table: a scenario's orders/s, latency and CPU per order."""

    name: str
    done: int
    errors: int
    elapsed: float
    latencies: list[float]
    api_cpu: float | None
    database_cpu: float
    busiest_api_share: float | None = None

    @property
    def rate(self) -> float:
        """Orders (or answered retries) per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """A latency percentile in milliseconds."""
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def per_order_ms(self, seconds: float | None) -> str:
        """CPU milliseconds per order of ``seconds`` spent over this run."""
        if seconds is None or not self.done:
            return "-"
        return f"{seconds * 1000 / self.done:.2f}"


async def measured(
    name: str, roots: dict[str, psutil.Process], run: Callable[[], Awaitable[LoadResult]]
) -> Row:
    """``run`` (a load without warm-up) with the CPU it cost each process tree."""
    with cpu_meter(roots) as spent:
        result = await run()
    return Row(
        name,
        result.requests,
        result.errors,
        result.elapsed,
        result.latencies,
        spent.get("api"),
        spent["database"],
        spent.get("api:busiest"),
    )


def print_rows(title: str, rows: list[Row], baseline: Row) -> None:
    """The table: each scenario against the replay's orders/s."""
    table = Table(title=title)
    columns = ("scenario", "orders", "errors", "orders/s", "p50 ms", "p99 ms")
    cpu = ("API CPU ms/order", "busiest API process", "PG CPU ms/order")
    for column in (*columns, *cpu, "vs baseline"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for row in [baseline, *rows]:
        table.add_row(*_cells(row, baseline))
    Console(width=160).print(table)


def _cells(row: Row, baseline: Row) -> list[str]:
    """A row as printed, its ratio to the baseline's orders/s last."""
    ratio = f"{row.rate / baseline.rate:.2f}x" if baseline.rate else "-"
    latency = [f"{row.percentile(fraction):.2f}" for fraction in (0.5, 0.99)]
    busiest = "-" if row.busiest_api_share is None else f"{row.busiest_api_share:.0%}"
    cpu = [row.per_order_ms(row.api_cpu), busiest, row.per_order_ms(row.database_cpu)]
    counts = [str(row.done), str(row.errors), f"{row.rate:,.0f}"]
    return [row.name, *counts, *latency, *cpu, "baseline" if row is baseline else ratio]


def _bare_work(
    urls: ServiceUrls,
    recording: Recording,
    variant_id: uuid.UUID,
    buyers: Buyers,
    args: argparse.Namespace,
    *,
    profiled: bool,
) -> tuple[Row, Sampled | None]:
    """The floor over HTTP (``bench/checkout_bare_work_app.py``): the same checkouts, sent the
    same way, to an app doing only the work they cannot skip on the same server; with
    ``profiled``, a profile of a further run, as Agora's."""
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "recording.pickle"
        saved.write_bytes(pickle.dumps(recording))
        env = agora_env(urls, **{RECORDING_VARIABLE: str(saved)})
        port = free_port()
        with app_server(BARE_WORK_APP, port, workers=args.workers, env=env) as url:
            roots = {"api": _server(port), "database": _postgres()}
            placing = _checkouts(url, variant_id, buyers)
            placing(1.0)  # warm-up
            name = "floor over HTTP: the SQL, token and budget"
            seconds = args.duration
            row = asyncio.run(measured(name, roots, lambda: asyncio.to_thread(placing, seconds)))
            if not profiled:
                return row, None
            return row, _sampled(roots["api"], seconds, lambda: placing(seconds))


def main() -> None:
    """Seed buyers, record one checkout, measure its replay, checkouts and retries; print."""
    parser = load_arguments(__doc__)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    args = parser.parse_args()

    urls = bench_services()
    variant_id, buyers = asyncio.run(seed(urls, args.concurrency))
    recording = asyncio.run(recorded_checkout(urls, variant_id, buyers))
    database = _postgres()

    async def floor() -> Row:
        async with connections(asyncpg_dsn(urls), args.concurrency) as opened:
            await replay(opened, recording, buyers.ids, 1.0)  # warm-up
            with cpu_meter({"database": database}) as spent:
                result = await replay(opened, recording, buyers.ids, args.duration)
        done = len(result.latencies) + result.errors
        name = "baseline: the same SQL over asyncpg"
        latencies = result.latencies
        return Row(name, done, result.errors, result.elapsed, latencies, None, spent["database"])

    baseline = uvloop.run(floor())
    rows, sampled = _agora(urls, variant_id, buyers, args, TARGET_RATIO * baseline.rate)
    # Last, so that Agora's figures are taken on the same database as before this row was added.
    bare, floor_sampled = _bare_work(
        urls, recording, variant_id, buyers, args, profiled=sampled is not None
    )
    statements = sum(len(transaction) for transaction in recording.transactions)
    print_rows(
        f"Checkout: {args.workers} API process(es), {args.concurrency} clients (one buyer "
        f"each), {args.duration:.0f}s each; a checkout is 3 requests, {statements} statements",
        [*rows, bare],
        baseline,
    )
    if bare.rate:
        print(f"Agora's checkout at {rows[0].rate / bare.rate:.2f}x the floor over HTTP")
    if sampled is None or floor_sampled is None:
        return
    title = f"Below {TARGET_RATE} orders/s or {TARGET_RATIO}x: where the API's CPU goes"
    print_profile(f"{title} (samples holding the GIL)", sampled[0])
    sides = {"Agora": sampled, "floor over HTTP": floor_sampled}
    print_packages("What Agora adds to the floor over HTTP, by package: CPU an order", sides)


def _agora(
    urls: ServiceUrls,
    variant_id: uuid.UUID,
    buyers: Buyers,
    args: argparse.Namespace,
    target_rate: float,
) -> tuple[list[Row], Sampled | None]:
    """Agora's checkouts and retries; a profile of a further run of checkouts when they fall
    short of ``TARGET_RATE`` or of ``target_rate`` (the ratio's share of the replay)."""
    port = free_port()
    with agora_server(agora_env(urls), port, workers=args.workers) as url:
        roots = {"api": _server(port), "database": _postgres()}
        flow = functools.partial(run_flow, base_url=url, variant_id=variant_id, address=ADDRESS)
        placing = _checkouts(url, variant_id, buyers)

        async def agora() -> list[Row]:
            await asyncio.to_thread(placing, 1.0)  # warm-up
            rows = [
                await measured(
                    "Agora: cart + item + order",
                    roots,
                    lambda: asyncio.to_thread(placing, args.duration),
                )
            ]
            # Each buyer resends its own key: one key sent twice at once is a 409 by design.
            finished = await completed_checkouts(url, buyers, variant_id)
            rows.append(
                await measured(
                    "Agora: order retry (Idempotency-Key)",
                    roots,
                    lambda: asyncio.to_thread(
                        flow, "retry", buyers=finished, retry=True, duration=args.duration
                    ),
                )
            )
            return rows

        rows = asyncio.run(agora())
        if rows[0].rate >= TARGET_RATE and rows[0].rate >= target_rate:
            return rows, None
        return rows, _sampled(roots["api"], args.duration, lambda: placing(args.duration))


def _checkouts(url: str, variant_id: uuid.UUID, buyers: Buyers) -> Callable[[float], LoadResult]:
    """Every buyer checking out at ``url`` for the seconds given, sent by wrk."""

    def placing(seconds: float) -> LoadResult:
        return run_flow(
            "checkout",
            url,
            buyers.tokens,
            retry=False,
            variant_id=variant_id,
            address=ADDRESS,
            duration=seconds,
        )

    return placing


def _sampled(
    server: psutil.Process, seconds: float, load: Callable[[], LoadResult]
) -> Sampled | None:
    """A profile of ``server`` (samples holding the GIL) under ``load``, with the orders the
    load placed meanwhile."""
    result, profile = profile_during(server.pid, int(seconds), load, gil=True)
    return None if profile is None else (profile, result.requests)


if __name__ == "__main__":
    main()
