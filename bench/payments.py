"""Verified payment callbacks per second, per provider, against ``/healthz`` in the same run.

Each request is a callback signed as its provider signs it (Stripe HMAC, Alipay RSA2, WeChat Pay
RSA + AES-256-GCM) for one of ``--payments`` open payments per provider, with its own event id:
verified on the raw body, the payment row-locked, the event stored in the inbox, the payment and
(the first time) its order moved to paid. When the pre-signed pool is used up, deliveries repeat
and take the duplicate path (verify, lock, inbox conflict).

    .venv/bin/python -m bench.payments [--concurrency 32] [--duration 5] [--payments 200]
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence

import aiohttp
from tests.payments import signing
from tests.payments.conftest import payment_environment
from tests.payments.keys import RunKeys
from tests.payments.standin import ProviderStandIn
from tests.payments.support import place_orders

from agora.core.db import Database
from agora.payments import service
from agora.settings import Settings
from bench.harness import (
    Request,
    agora_env,
    agora_server,
    bench_services,
    free_port,
    get,
    load_arguments,
    load_options,
    print_table,
    run_load,
)

Delivery = tuple[bytes, dict[str, str]]
POOL = 3000


def signed_deliveries(
    provider: str, keys: RunKeys, payment_ids: Sequence[uuid.UUID]
) -> list[Delivery]:
    """``POOL`` distinct success events for the payments, signed by the provider's side."""
    targets = itertools.islice(itertools.cycle(payment_ids), POOL)
    if provider == "stripe":
        bodies = [
            signing.stripe_event("payment_intent.succeeded", signing.stripe_intent(pid, 1999))
            for pid in targets
        ]
        return [(body, signing.stripe_headers(body)) for body in bodies]
    if provider == "alipay":
        alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return [(signing.alipay_notify(alipay, pid, "19.99"), form) for pid in targets]
    bodies = [signing.wechat_notify(pid, 1999) for pid in targets]
    return [(body, signing.wechat_headers(body, keys.wechat_platform)) for body in bodies]


def post_each(provider: str, deliveries: list[Delivery]) -> Request:
    """A request posting the next delivery of the pool to the provider's webhook."""
    path = f"/api/v1/payments/webhooks/{provider}"

    async def send(session: aiohttp.ClientSession, sequence: int) -> int:
        body, headers = deliveries[sequence % len(deliveries)]
        async with session.post(path, data=body, headers=headers) as response:
            await response.read()
            return response.status

    return send


async def open_payments(
    settings: Settings, keys: RunKeys, port: int, count: int
) -> dict[str, list[uuid.UUID]]:
    """``count`` orders awaiting payment per provider, each with a payment opened through the
    providers' stand-in API (the same one the tests use)."""
    standin = ProviderStandIn(keys)
    await standin.start(port)
    database = Database(settings.database_url or "")
    opened: dict[str, list[uuid.UUID]] = {}
    try:
        for provider in ("stripe", "alipay", "wechatpay"):
            currency = "EUR" if provider == "stripe" else "CNY"
            orders = await place_orders(database, settings, count, 1999, currency)
            async with database.unit_of_work() as session:
                opened[provider] = [
                    (
                        await service.create_payment(
                            session, settings, order.id, provider, user_id=None
                        )
                    ).id
                    for order in orders
                ]
    finally:
        await database.dispose()
        await standin.stop()
    return opened


def main() -> None:
    """Prepare payments, start the API, drive each provider's webhook, print the table."""
    parser = load_arguments(__doc__)
    parser.add_argument("--payments", type=int, default=200)
    args = parser.parse_args()
    load = load_options(args)

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
    deliveries = {
        provider: signed_deliveries(provider, keys, payment_ids)
        for provider, payment_ids in opened.items()
    }

    env = agora_env(urls, **payment_env)
    with agora_server(env, free_port()) as url:
        baseline = asyncio.run(run_load("agora /healthz (baseline)", url, get("/healthz"), **load))
        results = [
            asyncio.run(
                run_load(f"{provider} verified callback", url, post_each(provider, pool), **load)
            )
            for provider, pool in deliveries.items()
        ]
    print_table(
        f"Payment callbacks: 1 uvicorn worker, {args.concurrency} clients, "
        f"{args.duration:.0f}s each, {args.payments} payments per provider",
        results,
        baseline,
    )


if __name__ == "__main__":
    main()
