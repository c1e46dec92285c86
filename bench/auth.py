"""``/healthz`` latency while the server is busy with logins: does password hashing block the loop?

A login verifies an argon2id hash (19 MiB, 2 passes): tens of milliseconds of CPU. Run on the
event loop, it would stall every other request for that long; run in a thread (as Agora does), the
loop keeps answering. The baseline is ``/healthz`` on an idle server; the same probe is then run
while other clients log in as fast as they can, against one real ``agora api`` worker, and again
against the same app verifying passwords on the loop (``bench/loop_hashing_app.py``).

    .venv/bin/python -m bench.auth [--probes 4] [--logins 16] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import AbstractContextManager

import aiohttp
import httpx

from bench.harness import (
    LoadResult,
    Request,
    agora_env,
    agora_server,
    app_server,
    bench_services,
    free_port,
    get,
    print_table,
    run_load,
)

EMAIL = "bench-login@example.com"
PASSWORD = "a benchmark passphrase"  # noqa: S105 - a throwaway benchmark account


def login() -> Request:
    """A request that logs the benchmark account in (OAuth2 password form)."""
    form = {"username": EMAIL, "password": PASSWORD}

    async def send(session: aiohttp.ClientSession, _: int) -> int:
        async with session.post("/api/v1/auth/token", data=form) as response:
            await response.read()
            return response.status

    return send


def ensure_account(base_url: str) -> None:
    """Register the benchmark account (already there from an earlier run is fine)."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
    )
    if response.status_code not in (201, 409):
        raise RuntimeError(f"cannot register the benchmark account: {response.text}")


async def probe_under_logins(
    label: str, base_url: str, probes: int, logins: int, duration: float
) -> tuple[LoadResult, LoadResult]:
    """``/healthz`` and logins driven at the same time."""
    healthz, logged_in = await asyncio.gather(
        run_load(
            f"/healthz under logins, {label}", base_url, get("/healthz"), concurrency=probes,
            duration=duration,
        ),
        run_load(
            f"logins ({logins} clients), {label}", base_url, login(), concurrency=logins,
            duration=duration,
        ),
    )  # fmt: skip
    return healthz, logged_in


def loop_hashing_server(env: dict[str, str], port: int) -> AbstractContextManager[str]:
    """The counterfactual: Agora verifying passwords on the event loop."""
    return app_server("bench.loop_hashing_app:create_app", port, env=env)


def main() -> None:
    """Measure idle, then under logins, on the same server, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=4, help="clients probing /healthz")
    parser.add_argument("--logins", type=int, default=16, help="clients logging in")
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()

    urls = bench_services()
    unlimited = "1000000/second"
    env = agora_env(
        urls,
        AGORA_RATE_LIMIT_LOGIN=unlimited,
        AGORA_RATE_LIMIT_LOGIN_IP=unlimited,
        AGORA_RATE_LIMIT_LOGIN_ACCOUNT=unlimited,
    )
    with agora_server(env, free_port()) as url:
        ensure_account(url)
        idle = asyncio.run(
            run_load(
                "/healthz idle (baseline)", url, get("/healthz"), concurrency=args.probes,
                duration=args.duration,
            )
        )  # fmt: skip
        busy, logged_in = asyncio.run(
            probe_under_logins("hash pool", url, args.probes, args.logins, args.duration)
        )
    with loop_hashing_server(env, free_port()) as url:
        blocked, blocked_logins = asyncio.run(
            probe_under_logins("on the loop", url, args.probes, args.logins, args.duration)
        )
    print_table(
        f"Auth: 1 API process, {args.probes} /healthz clients, {args.logins} login clients, "
        f"{args.duration:.0f}s each",
        [busy, logged_in, blocked, blocked_logins],
        idle,
    )


if __name__ == "__main__":
    main()
