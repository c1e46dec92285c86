"""What each piece of the HTTP middleware stack costs a request, measured from outside.

The app is served as users run it, then once without each middleware in turn
(``bench/middleware_app.py``), one process each on ``agora api``'s server, loaded with
``wrk -t1`` on two paths: ``/healthz`` (answered by the edge cache) and ``/readyz`` (routing,
dependencies, a round trip to PostgreSQL and one to Redis; never cached). A piece's cost is
``1/req/s with it − 1/req/s without it``: microseconds of the one server process per request
(negative: the piece saves work, as the edge cache does). Full-stack runs alternate with the
others, and each is compared with the full-stack run just before it, so that drift on a shared
machine weighs less.

    .venv/bin/python -m bench.middleware [--connections 32] [--duration 4]
"""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console
from rich.table import Table

from agora.app import create_app
from bench.harness import agora_env, app_server, bench_services, free_port
from bench.wrk import measure_get

FACTORY = "bench.middleware_app:create_app"
PATHS = {"/healthz": "/healthz", "/readyz": "/readyz"}


def throughputs(env: dict[str, str], left_out: str, args: argparse.Namespace) -> list[float]:
    """req/s on each path of the app less ``left_out`` (the whole stack when empty)."""
    with app_server(FACTORY, free_port(), env={**env, "AGORA_BENCH_WITHOUT": left_out}) as url:
        return [
            asyncio.run(
                measure_get(name, url, path, connections=args.connections, duration=args.duration)
            ).throughput
            for name, path in PATHS.items()
        ]


def _name(middleware: object) -> str:
    return str(getattr(middleware, "__name__", middleware))


def main() -> None:
    """Measure the stack, and the stack less each piece, and print each piece's cost."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=4)
    args = parser.parse_args()
    env = agora_env(bench_services())
    pieces = [_name(middleware.cls) for middleware in create_app().user_middleware]
    table = Table(
        title=f"Middleware cost per request (1 server process, wrk -t1 -c{args.connections})"
    )
    table.add_column("left out", justify="left")
    for name in PATHS:
        table.add_column(f"{name}: req/s without it (full stack)", justify="right")
        table.add_column(f"{name} µs/request", justify="right")
    for piece in pieces:
        full = throughputs(env, "", args)
        without = throughputs(env, piece, args)
        cells = []
        for with_it, without_it in zip(full, without, strict=True):
            cost = (1 / with_it - 1 / without_it) * 1e6 if with_it and without_it else float("nan")
            cells += [f"{without_it:,.0f} ({with_it:,.0f})", f"{cost:+.1f}"]
        table.add_row(piece, *cells)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
