"""Where a checkout's CPU goes, request by request: the app driven in-process, no server.

The ASGI app is called directly (a scope, a ``receive``, a ``send``: no HTTP server, no HTTP
client) against the bench's PostgreSQL and Redis, one checkout at a time, and
``time.process_time()`` is read around each request: the CPU the app itself spends on opening the
cart, adding the item, placing the order and answering a retry of it, apart from granian, the
load generator and the scheduling noise of a loaded machine. Run it against the code before and
after a change, in alternation (``PYTHONPATH`` pointing at an export of the older ``src``).

CPU time still moves with the machine's speed. ``--calls`` counts instead the Python calls each
request makes (function calls and coroutine resumptions, as cProfile counts them, the C
functions included): the same for the same code on any machine, so a change's effect shows in
one run each, however noisy the machine.

    .venv/bin/python -m bench.checkout_cpu [--checkouts 300] [--warmup 50] [--calls]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
import uvloop
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table
from starlette.types import Message

from agora.app import create_app
from bench.checkout import ADDRESS, bench_settings, seed
from bench.harness import bench_services

STEPS = ("open the cart", "add an item", "place the order", "retry the order")


async def call(app: FastAPI, path: str, headers: dict[str, str], body: bytes = b"") -> Message:
    """POST ``body`` to ``path``; the response's start message, its body under ``"body"``."""
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    if body:
        raw += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": raw, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answer: Message = {"body": b""}

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.update(message)
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer


def timed(
    spent: list[float], status: int, counter: cProfile.Profile | None = None
) -> Callable[[Awaitable[Message]], Awaitable[Message]]:
    """Await a request, adding the CPU it took to ``spent`` (with ``counter`` counting its calls
    meanwhile, when given); it must answer ``status``."""

    async def run(request: Awaitable[Message]) -> Message:
        started = time.process_time()
        if counter is not None:
            counter.enable()
        answer = await request
        if counter is not None:
            counter.disable()
        spent.append(time.process_time() - started)
        if answer["status"] != status:
            raise RuntimeError(f"expected {status}, got {answer['status']}: {answer['body']!r}")
        return answer

    return run


async def checkouts(
    count: int, warmup: int, counters: dict[str, cProfile.Profile] | None = None
) -> dict[str, list[float]]:
    """CPU seconds of each request of ``count`` checkouts, after ``warmup`` unmeasured ones;
    with ``counters`` (one a request), their calls counted too."""
    urls = await asyncio.to_thread(bench_services)
    variant_id, buyers = await seed(urls, 1)
    app = create_app(bench_settings(urls))
    headers = buyers.headers[0]
    spent: dict[str, list[float]] = {step: [] for step in STEPS}
    async with app.router.lifespan_context(app):
        for done in range(warmup + count):
            cpu = {step: [] for step in STEPS} if done < warmup else spent
            counting = {} if counters is None or done < warmup else counters
            opened = await timed(cpu[STEPS[0]], 201, counting.get(STEPS[0]))(
                call(app, "/api/v1/carts", headers)
            )
            cart_id = orjson.loads(opened["body"])["id"]
            item = orjson.dumps({"variant_id": str(variant_id), "quantity": 1})
            items = f"/api/v1/carts/{cart_id}/items"
            await timed(cpu[STEPS[1]], 201, counting.get(STEPS[1]))(call(app, items, headers, item))
            order = orjson.dumps({"cart_id": cart_id, "shipping_address": ADDRESS})
            keyed = {**headers, "Idempotency-Key": uuid.uuid4().hex}
            for step in STEPS[2:]:
                await timed(cpu[step], 201, counting.get(step))(
                    call(app, "/api/v1/orders", keyed, order)
                )
    return spent


def main() -> None:
    """Run the checkouts in-process and print the CPU of each request."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkouts", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--calls", action="store_true", help="count calls instead of CPU")
    args = parser.parse_args()
    if args.calls:
        print_calls(args.checkouts, args.warmup)
        return
    before = os.times()
    spent = uvloop.run(checkouts(args.checkouts, args.warmup))
    after = os.times()
    table = Table(title=f"CPU of a checkout's requests, in-process, {args.checkouts} checkouts")
    for column in ("request", "median ms", "mean ms"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for step, seconds in spent.items():
        table.add_row(
            step,
            f"{statistics.median(seconds) * 1000:.2f}",
            f"{statistics.mean(seconds) * 1000:.2f}",
        )
    total = sum(statistics.mean(spent[step]) for step in STEPS[:3])
    table.add_row("a checkout (the first three)", "", f"{total * 1000:.2f}")
    Console().print(table)
    runs = args.checkouts + args.warmup
    user, system = ((after[i] - before[i]) * 1000 / runs for i in (0, 1))
    print(f"whole run, per checkout and retry: {user:.2f} ms user, {system:.2f} ms system")


def print_calls(count: int, warmup: int) -> None:
    """Run the checkouts with each request's calls counted, and print them."""
    counters = {step: cProfile.Profile() for step in STEPS}
    uvloop.run(checkouts(count, warmup, counters))
    table = Table(title=f"Python calls of a checkout's requests, in-process, {count} checkouts")
    table.add_column("request")
    table.add_column("calls a request", justify="right")
    calls = {step: _calls(counter) / count for step, counter in counters.items()}
    for step in STEPS:
        table.add_row(step, f"{calls[step]:,.0f}")
    checkout = sum(calls[step] for step in STEPS[:3])
    table.add_row("a checkout (the first three)", f"{checkout:,.0f}")
    Console().print(table)


def _calls(counter: cProfile.Profile) -> int:
    """Every call ``counter`` counted (each function's count, summed)."""
    return sum(entry[1] for entry in pstats.Stats(counter).stats.values())  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
