"""Verified payment callbacks per second, per provider, against two floors measured in the same
run: Agora's ``/healthz`` and a bare app that only verifies the same callbacks.

Each provider gets ``--payments`` open payments (real orders awaiting payment, ten per product,
taken in a shuffled order so that the callbacks in flight together are about different products),
and for each one the success callback its provider would send (Stripe HMAC, Alipay RSA2,
WeChat Pay RSA + AES-256-GCM, signed with run-time keys as the providers sign). ``wrk`` sends
every callback twice, as a provider resends one whose answer it did not see: in blocks of twice
the client count, the block's first deliveries, then the same block again, so a duplicate arrives
about two rounds of clients after its first delivery. A first delivery is verified, its payment
row-locked, stored in the inbox, the payment and its order moved to paid; a duplicate is answered
from the inbox. The table says how many of each were measured (counted in the inbox), so a run
that used up the sequence and went on with duplicates only is seen as such.

The floor ``verify only`` (``bench/payments_verify_app.py``) serves the same sequence with the
same provider classes and server settings, verifying and answering, nothing else.

Two API processes by default, as the production shape runs (``make scale-up``); enough payments
that a run at a few thousand deliveries a second keeps the mix at half firsts, half duplicates.

    .venv/bin/python -m bench.payments [--connections 32] [--duration 5] [--payments 4000]
                                       [--processes 2]
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from tests.payments import signing
from tests.payments.conftest import payment_environment
from tests.payments.keys import RunKeys
from tests.payments.standin import ProviderStandIn
from tests.payments.support import place_orders

from agora.core.db import Database
from agora.payments import service
from agora.payments.models import InboxEvent
from agora.settings import Settings
from bench.harness import (
    LoadResult,
    agora_env,
    agora_server,
    app_server,
    bench_services,
    free_port,
)
from bench.profiling import print_profile, profile_during
from bench.wrk import (
    PreparedRequest,
    RequestSequence,
    WrkResult,
    measure_get,
    server_cpu_seconds,
    server_process,
    wrk_arguments,
    wrk_load,
)

PROVIDERS = ("alipay", "wechatpay", "stripe")
VERIFY_APP = "bench.payments_verify_app:create_app"
TARGET = 1000
ORDERS_PER_VARIANT = 10  # orders share a variant's stock row by tens, not all on one row


def success_callbacks(
    provider: str, keys: RunKeys, payment_ids: Sequence[uuid.UUID]
) -> list[PreparedRequest]:
    """The provider's signed success callback (19.99) for each payment."""
    path = f"/api/v1/payments/webhooks/{provider}"
    if provider == "stripe":
        bodies = [
            signing.stripe_event("payment_intent.succeeded", signing.stripe_intent(pid, 1999))
            for pid in payment_ids
        ]
        return [
            PreparedRequest("POST", path, signing.stripe_headers(body), body) for body in bodies
        ]
    if provider == "alipay":
        alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return [
            PreparedRequest("POST", path, form, signing.alipay_notify(alipay, pid, "19.99"))
            for pid in payment_ids
        ]
    bodies = [signing.wechat_notify(pid, 1999) for pid in payment_ids]
    return [
        PreparedRequest("POST", path, signing.wechat_headers(body, keys.wechat_platform), body)
        for body in bodies
    ]


def delivered_twice(callbacks: Sequence[PreparedRequest], block: int) -> list[PreparedRequest]:
    """Each callback, then again ``block`` deliveries later: ``block`` firsts, their duplicates."""
    sequence: list[PreparedRequest] = []
    for start in range(0, len(callbacks), block):
        chunk = callbacks[start : start + block]
        sequence += [*chunk, *chunk]
    return sequence


async def open_payments(
    settings: Settings, keys: RunKeys, port: int, count: int
) -> dict[str, list[uuid.UUID]]:
    """``count`` orders awaiting payment per provider, each with a payment opened through the
    providers' stand-in API (the same one the tests use)."""
    standin = ProviderStandIn(keys)
    await standin.start(port)
    database = Database(settings.database_url or "")
    opened: dict[str, list[uuid.UUID]] = {provider: [] for provider in PROVIDERS}
    try:
        for provider in PROVIDERS:
            currency = "EUR" if provider == "stripe" else "CNY"
            for start in range(0, count, ORDERS_PER_VARIANT):
                size = min(ORDERS_PER_VARIANT, count - start)
                orders = await place_orders(database, settings, size, 1999, currency)
                async with database.unit_of_work() as session:
                    for order in orders:
                        payment = await service.create_payment(
                            session, settings, order.id, provider, user_id=None
                        )
                        opened[provider].append(payment.id)
    finally:
        await database.dispose()
        await standin.stop()
    return opened


async def inbox_size(database_url: str, provider: str) -> int:
    """Callbacks of ``provider`` stored in the inbox."""
    database = Database(database_url, pool_size=2)
    try:
        async with database.unit_of_work() as session:
            count = select(func.count()).where(InboxEvent.provider == provider)
            return int(await session.scalar(count) or 0)
    finally:
        await database.dispose()


@dataclass(frozen=True)
class CallbackRun:
    """One provider's measured run, how many of its deliveries were first ones, the CPU a
    delivery cost the API processes (user + system, over the measured run), and where in its
    sequence a further run starts with deliveries not yet sent."""

    result: WrkResult
    first_deliveries: int
    cpu_ms_per_request: float
    next_start: int


def measure_callbacks(
    provider: str,
    sequence: RequestSequence,
    url: str,
    database_url: str,
    load: dict[str, int],
) -> CallbackRun:
    """A one-second warm-up, then the measured run taking up the sequence where it stopped."""
    warmup = sequence.measure("warm-up", url, connections=load["connections"], duration=1)
    before = asyncio.run(inbox_size(database_url, provider))
    start = warmup.requests + load["connections"]  # past what the warm-up sent, answered or not
    process = server_process(int(url.rsplit(":", 1)[1]))
    cpu_before = server_cpu_seconds(process)
    result = sequence.measure(f"agora {provider} callback", url, start=start, **load)
    cpu = server_cpu_seconds(process) - cpu_before
    first = asyncio.run(inbox_size(database_url, provider)) - before
    per_request = 1000 * cpu / result.requests if result.requests else 0.0
    return CallbackRun(result, first, per_request, start + result.requests + load["connections"])


def print_callbacks(
    title: str,
    healthz: LoadResult,
    floors: dict[str, WrkResult],
    runs: dict[str, CallbackRun],
) -> None:
    """One row per floor and per provider: throughput, latency, mix, ratio to its floor."""
    table = Table(title=title)
    columns = ("scenario", "first", "duplicate", "errors", "req/s", "p50 ms", "p99 ms")
    for column in (*columns, "CPU ms/req", "ratio", "target"):
        table.add_column(column, justify="left" if column == "scenario" else "right")

    def row(result: LoadResult, mix: tuple[str, str, str], ratio: str, target: str) -> None:
        table.add_row(
            result.name,
            *mix[:2],
            str(result.errors),
            f"{result.throughput:,.0f}",
            f"{result.median:.2f}",
            f"{result.percentile(0.99):.2f}",
            mix[2],
            ratio,
            target,
        )

    row(healthz, ("", "", ""), "", "")
    for provider, run in runs.items():
        floor = floors[provider]
        row(floor, ("", "", ""), "floor", "")
        ratio = run.result.throughput / floor.throughput if floor.throughput else float("nan")
        duplicates = run.result.requests - run.first_deliveries
        met = "NOT met" if _below_target(run) else "met"
        target = f"≥ {TARGET:,}/s {met}" if provider != "stripe" else ""
        mix = (f"{run.first_deliveries:,}", f"{duplicates:,}", f"{run.cpu_ms_per_request:.2f}")
        row(run.result, mix, f"{ratio:.2f}x", target)
    Console(width=140).print(table)


def main() -> None:
    """Prepare payments, start the floor app and the API, drive each provider, print the table."""
    parser = wrk_arguments(__doc__)
    parser.add_argument("--payments", type=int, default=4000, help="open payments per provider")
    parser.set_defaults(processes=2)
    args = parser.parse_args()
    load = wrk_load(args)

    urls = bench_services()
    keys = RunKeys.generate()
    standin_port = free_port()
    payment_env = payment_environment(keys, f"http://127.0.0.1:{standin_port}")
    settings = Settings(
        env="test",
        database_url=urls.database_url,
        redis_url=urls.redis_url,
        _env_file=None,  # type: ignore[call-arg]
        **{key.removeprefix("AGORA_").lower(): value for key, value in payment_env.items()},
    )
    opened = asyncio.run(open_payments(settings, keys, standin_port, args.payments))
    for payment_ids in opened.values():  # callbacks in flight together are about any products
        random.Random(14).shuffle(payment_ids)
    sequences = {
        provider: RequestSequence(
            delivered_twice(success_callbacks(provider, keys, payment_ids), 2 * args.connections)
        )
        for provider, payment_ids in opened.items()
    }

    env = agora_env(urls, **payment_env)
    floors, runs = {}, {}
    # Both servers stay up, and each provider is measured on the floor, then right away on
    # Agora: the two sides of a ratio are seconds apart on a machine whose load drifts.
    with (
        app_server(VERIFY_APP, free_port(), workers=args.processes, env=env) as floor_url,
        agora_server(env, free_port(), workers=args.processes) as url,
    ):
        healthz = asyncio.run(measure_get("agora /healthz", url, "/healthz", **load))
        for provider, sequence in sequences.items():
            sequence.measure("warm-up", floor_url, connections=args.connections, duration=1)
            floors[provider] = sequence.measure(
                f"verify only {provider} (floor)", floor_url, **load
            )
            runs[provider] = measure_callbacks(provider, sequence, url, urls.database_url, load)
        print_callbacks(
            "Payment callbacks, each delivered twice (both served as `agora api` serves Agora, "
            f"{args.processes} process(es), "
            f"wrk -t1 -c{args.connections}, {args.duration}s each, {args.payments} payments per "
            "provider)",
            healthz,
            floors,
            runs,
        )
        slow = [provider for provider in ("alipay", "wechatpay") if _below_target(runs[provider])]
        if slow:
            provider, sequence = slow[0], sequences[slow[0]]
            _, profile = profile_during(
                server_process(int(url.rsplit(":", 1)[1])).pid,
                args.duration,
                lambda: sequence.measure("profiled", url, start=runs[provider].next_start, **load),
            )
            print_profile(f"{provider} below {TARGET:,}/s: where a callback's CPU goes", profile)


def _below_target(run: CallbackRun) -> bool:
    return run.result.throughput < TARGET


if __name__ == "__main__":
    main()
