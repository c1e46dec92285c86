"""What each piece of the HTTP middleware stack costs a request, measured from outside.

The app is served as users run it, then once without each middleware in turn
(``bench/middleware_app.py``), one process each on ``agora api``'s server, loaded with
``wrk -t1`` on two paths: ``/healthz`` (answered by the edge cache) and ``/readyz`` (routing,
dependencies, a round trip to PostgreSQL and one to Redis; never cached). A piece's cost is the
server's CPU per request with it less without it, in microseconds (negative: the piece saves
work, as the edge cache does); CPU per request moves far less than req/s on a shared machine.
Full-stack runs alternate with the others, and each is compared with the full-stack run just
before it, so that drift weighs less.

    .venv/bin/python -m bench.middleware [--connections 32] [--duration 4]
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from agora.app import create_app
from bench.harness import agora_env, app_server, bench_services, free_port
from bench.wrk import measure_on, wrk_load

FACTORY = "bench.middleware_app:create_app"
PATHS = {"/healthz": "/healthz", "/readyz": "/readyz"}


def cpu_per_request(env: dict[str, str], left_out: str, args: argparse.Namespace) -> list[float]:
    """Server CPU µs per request on each path of the app less ``left_out`` (the whole stack
    when empty)."""
    load = wrk_load(args)
    with app_server(FACTORY, free_port(), env={**env, "AGORA_BENCH_WITHOUT": left_out}) as url:
        return [measure_on(name, url, path, load).cpu_us for name, path in PATHS.items()]


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
        table.add_column(f"{name}: CPU µs/request without it (full stack)", justify="right")
        table.add_column(f"{name}: its cost, µs", justify="right")
    for piece in pieces:
        full = cpu_per_request(env, "", args)
        without = cpu_per_request(env, piece, args)
        cells = []
        for with_it, without_it in zip(full, without, strict=True):
            cells += [f"{without_it:.1f} ({with_it:.1f})", f"{with_it - without_it:+.1f}"]
        table.add_row(piece, *cells)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
