"""The flash-sale purchase against bare JSON, measured from outside with ``wrk``, in one run.

Sales with as many units as buyers (so every purchase is accepted: 202 with a ticket), and
one pre-issued access token per buyer: wrk sends each request as the next buyer
(``RequestSequence``), the same requests to Agora's ``POST /flash-sales/{id}/purchase`` and to
two floors on the same server (``agora/serving.py``):

- bare JSON, ``bench/flashsale_bare_app.py``: a bare Starlette app that reads the same JSON
  body and answers the same 202 JSON (the target is a ratio against this one);
- bare + the required work, ``bench/flashsale_bare_work_app.py``: the same bare app verifying
  the same access token with PyJWT and making the same single Redis Lua call with redis-py, on
  a sale of its own; what the work itself costs in this stack, without Agora around it.

Each side gets a one-second warm-up, then the measured run takes up the sequence where the
warm-up stopped, so no buyer buys twice on one sale while the sequence lasts. Besides req/s,
the table gives the CPU each request cost the server processes (psutil, user + system, over
the measured run), the figure that carries over on a shared machine.

One API process by default, rate limits lifted, no worker (the tickets stay queued).

    .venv/bin/python -m bench.flashsale_purchase [--connections 32] [--duration 5]
                                                 [--buyers 20000] [--processes 1]
                                                 [--profile-rows 12]
"""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from bench.flashsale import create_sale, seed_sale_buyers
from bench.harness import agora_env, agora_server, app_server, bench_services, free_port
from bench.profiling import print_profile, profile_during
from bench.wrk import (
    Measured,
    PreparedRequest,
    RequestSequence,
    server_cpu_seconds,
    server_process,
    wrk_arguments,
    wrk_load,
)

BARE_APP = "bench.flashsale_bare_app:create_app"
BARE_WORK_APP = "bench.flashsale_bare_work_app:create_app"
TARGET = 0.6


def purchases(sale_id: str, tokens: list[str]) -> RequestSequence:
    """One purchase of one unit per buyer, in the buyers' order."""
    path = f"/api/v1/flash-sales/{sale_id}/purchase"
    return RequestSequence(
        [
            PreparedRequest(
                "POST",
                path,
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                b'{"quantity":1}',
            )
            for token in tokens
        ]
    )


def measure(
    name: str, sequence: RequestSequence, url: str, load: dict[str, int]
) -> tuple[Measured, int]:
    """A one-second warm-up, then the measured run from where the warm-up stopped; with the
    position in the sequence where a further run may start (no buyer is used twice)."""
    warmup = sequence.measure("warm-up", url, connections=load["connections"], duration=1)
    start = warmup.requests + load["connections"]
    process = server_process(int(url.rsplit(":", 1)[1]))
    cpu_before = server_cpu_seconds(process)
    result = sequence.measure(name, url, start=start, **load)
    cpu = server_cpu_seconds(process) - cpu_before
    per_request = cpu / result.requests * 1e6 if result.requests else float("nan")
    return Measured(result, per_request), start + result.requests + load["connections"]


def print_table(title: str, bare: Measured, work: Measured, agora: Measured) -> None:
    """The two floors, Agora, and Agora's ratios: against bare JSON (the target) and against
    the bare app doing the same work."""
    table = Table(title=title)
    columns = ("scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "CPU ms/req")
    for column in (*columns, "vs bare JSON", "vs bare + work"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    ratio = _ratio(agora, bare)
    verdict = f"≥ {TARGET}x {'met' if ratio >= TARGET else 'NOT met'}"
    rows = (
        (bare, "floor", ""),
        (work, f"{_ratio(work, bare):.2f}x", "floor"),
        (agora, f"{ratio:.2f}x ({verdict})", f"{_ratio(agora, work):.2f}x"),
    )
    for measured, against_bare, against_work in rows:
        result = measured.load
        table.add_row(
            result.name,
            f"{result.requests:,}",
            str(result.errors),
            f"{result.throughput:,.0f}",
            f"{result.median:.2f}",
            f"{result.percentile(0.99):.2f}",
            f"{measured.cpu_us / 1000:.3f}",
            against_bare,
            against_work,
        )
    Console(width=160).print(table)
    print(
        f"CPU per request against bare JSON: bare + work {_cpu_ratio(bare, work):.2f}x, "
        f"Agora {_cpu_ratio(bare, agora):.2f}x (throughput's target ≥ {TARGET}x is "
        f"{1 / TARGET:.2f}x the CPU)"
    )


def _ratio(measured: Measured, floor: Measured) -> float:
    """Throughput of ``measured`` over that of ``floor``."""
    floor_rate = floor.load.throughput
    return measured.load.throughput / floor_rate if floor_rate else 0.0


def _cpu_ratio(floor: Measured, measured: Measured) -> float:
    """CPU per request of ``measured`` over that of ``floor``."""
    return measured.cpu_us / floor.cpu_us if floor.cpu_us else float("nan")


def main() -> None:
    """Seed buyers and two sales, measure the two floors, then Agora; print the table."""
    parser = wrk_arguments(__doc__)
    parser.add_argument("--buyers", type=int, default=20000, help="buyers, and units per sale")
    parser.add_argument("--profile-rows", type=int, default=12, help="rows of the profile")
    args = parser.parse_args()
    load = wrk_load(args)

    urls = bench_services()
    variant_id, tokens, staff_token = asyncio.run(seed_sale_buyers(urls, args.buyers, args.buyers))
    env = agora_env(urls, AGORA_RATE_LIMIT_FLASH_SALE_IP="1000000/second")
    with agora_server(env, free_port(), workers=args.processes) as url:
        work_sale = asyncio.run(create_sale(url, staff_token, variant_id, args.buyers))
        sale_id = asyncio.run(create_sale(url, staff_token, variant_id, args.buyers))
        with app_server(BARE_APP, free_port(), workers=args.processes) as bare_url:
            bare, _ = measure("bare JSON (floor)", purchases(work_sale, tokens), bare_url, load)
        with app_server(BARE_WORK_APP, free_port(), workers=args.processes, env=env) as work_url:
            work, _ = measure(
                "bare + the required work", purchases(work_sale, tokens), work_url, load
            )
        sequence = purchases(sale_id, tokens)
        agora, next_buyer = measure("agora purchase", sequence, url, load)
        print_table(
            "Flash-sale purchase against bare JSON (all served as `agora api` serves Agora, "
            f"{args.processes} process(es), wrk -t1 -c{args.connections}, {args.duration}s "
            "each, one buyer per request)",
            bare,
            work,
            agora,
        )
        if agora.load.throughput < TARGET * bare.load.throughput:
            _, profile = profile_during(
                server_process(int(url.rsplit(":", 1)[1])).pid,
                args.duration,
                lambda: sequence.measure("profiled", url, start=next_buyer, **load),
            )
            title = f"Below {TARGET}x: where a purchase's CPU goes"
            print_profile(title, profile, top=args.profile_rows)


if __name__ == "__main__":
    main()
