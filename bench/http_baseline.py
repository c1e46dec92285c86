"""``/healthz`` on Agora against a bare Starlette app, same server settings, in one run.

This is the yardstick every later benchmark is compared to: what Agora's middleware, routing and
serialisation cost over the framework floor.

    .venv/bin/python -m bench.http_baseline [--concurrency 32] [--duration 5]
"""

from __future__ import annotations

import asyncio

from bench.harness import (
    agora_env,
    agora_server,
    app_server,
    bench_services,
    free_port,
    get,
    load_arguments,
    load_options,
    print_table,
    run_load,
)


def main() -> None:
    """Measure both servers one after the other and print the table."""
    args = load_arguments(__doc__).parse_args()
    load = load_options(args)

    with app_server("bench.baseline_app:create_app", free_port()) as url:
        baseline = asyncio.run(
            run_load("starlette /healthz (baseline)", url, get("/healthz"), **load)
        )
    env = agora_env(bench_services())
    with agora_server(env, free_port()) as url:
        healthz = asyncio.run(run_load("agora /healthz", url, get("/healthz"), **load))
        readyz = asyncio.run(run_load("agora /readyz (PG + Redis)", url, get("/readyz"), **load))
    print_table(
        f"HTTP baseline: 1 server process, {args.concurrency} clients, {args.duration:.0f}s each",
        [healthz, readyz],
        baseline,
    )


if __name__ == "__main__":
    main()
