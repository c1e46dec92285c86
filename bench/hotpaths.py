"""Hot paths against the framework floor, measured from outside with ``wrk``, in one run.

1. **Cached reads**: each path is first recorded from Agora as ``agora api`` serves it (body and
   headers); a bare Starlette app then serves exactly those bytes under the same server and
   settings (``app_server``), and both are loaded with ``wrk -t1 -c<clients>`` one after the
   other, in alternating rounds (the best round of each side counts). The ratio is per path;
   each side's server CPU per request is printed too.
2. **Server**: the same Agora app as ``agora api`` runs it (granian) and under uvicorn (uvloop,
   httptools), the server it replaced.
3. **Memory**: the API process's RSS after ``--memory-seconds`` of mixed load (every path above).

One API process, rate limits lifted (``AGORA_RATE_LIMIT_DEFAULT``), demo catalog loaded. The
machine is shared: absolute figures are noisy, the ratios within one run are what count.

    .venv/bin/python -m bench.hotpaths [--connections 32] [--duration 3] [--rounds 3]
        [--memory-seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.harness import (
    ROOT,
    UVICORN_FLAGS,
    agora_env,
    agora_server,
    app_server,
    bench_services,
    free_port,
    uvicorn_server,
)
from bench.profiling import print_profile, profile_during
from bench.wrk import Measured, measure_on, server_process, wrk_load

AGORA = "agora.app:create_app"
BARE = "bench.bare_bytes_app:create_app"
TARGET = 0.6
SERVER_WRITTEN_HEADERS = frozenset({"date", "server", "content-length"})


def hot_paths(base_url: str) -> dict[str, str]:
    """The paths measured, by name: liveness and the cached public catalog reads."""
    page = httpx.get(f"{base_url}/api/v1/products?limit=24").json()
    product_id = page["items"][0]["id"]
    return {
        "/healthz": "/healthz",
        "product detail (cached)": f"/api/v1/products/{product_id}",
        "product list (cached)": "/api/v1/products?limit=24",
        "search hit (cached)": "/api/v1/products?q=phone",
        "category tree (cached)": "/api/v1/categories",
    }


def record(base_url: str, paths: dict[str, str], into: Path) -> None:
    """Write what Agora answers on each path, body and headers, for the bare app to serve. The
    headers the server writes itself (date, server, content-length) are left to the bare app's
    server; everything else, security headers and request id included, is sent byte for byte."""
    recorded = {}
    for path in paths.values():
        response = httpx.get(base_url + path)
        response.raise_for_status()
        headers = [
            [name, value]
            for name, value in response.headers.items()
            if name not in SERVER_WRITTEN_HEADERS
        ]
        recorded[path] = [response.text, headers]
    into.write_text(json.dumps(recorded))


def measure_pairs(
    first_url: str,
    second_url: str,
    paths: dict[str, str],
    names: tuple[str, str],
    load: dict[str, int],
    rounds: int,
) -> list[tuple[Measured, Measured]]:
    """Each path under wrk on the first server, then right away on the second, ``rounds``
    times; each side's best round. Another process taking the cores for a few seconds drags
    down one round of one side, not the ratio."""
    pairs = []
    for name, path in paths.items():
        first, second = [], []
        for _ in range(rounds):
            first.append(measure_on(f"{names[0]} {name}", first_url, path, load))
            second.append(measure_on(f"{names[1]} {name}", second_url, path, load))
        pairs.append((_best(first), _best(second)))
    return pairs


def _best(rounds: list[Measured]) -> Measured:
    return max(rounds, key=lambda measured: measured.load.throughput)


def ratio_of(pair: tuple[Measured, Measured]) -> float:
    """The measured side's throughput over the baseline's."""
    baseline, measured = pair
    if not baseline.load.throughput:
        return 0.0
    return measured.load.throughput / baseline.load.throughput


def profile_misses(
    base_url: str,
    paths: dict[str, str],
    pairs: list[tuple[Measured, Measured]],
    load: dict[str, int],
    target: float,
) -> None:
    """For each path below ``target``, where Agora's CPU goes on it, from a profiled rerun."""
    process = server_process(int(base_url.rsplit(":", 1)[1]))
    for (name, path), pair in zip(paths.items(), pairs, strict=True):
        if ratio_of(pair) >= target:
            continue
        rerun = functools.partial(measure_on, name, base_url, path, load)
        _, profile = profile_during(process.pid, load["duration"], rerun)
        print_profile(f"Agora on {name}, below target: where the CPU goes", profile)


def print_pairs(title: str, pairs: list[tuple[Measured, Measured]], *, target: float) -> None:
    """One row per (baseline, measured) pair: throughputs, latencies, server CPU per request,
    and the throughput ratio the target is about."""
    table = Table(title=title)
    columns = (
        "scenario",
        "baseline req/s",
        "req/s",
        "errors",
        "p50 ms",
        "p99 ms",
        "baseline CPU µs/req",
        "CPU µs/req",
        "ratio",
        "target",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for baseline, measured in pairs:
        result = measured.load
        ratio = ratio_of((baseline, measured))
        table.add_row(
            result.name,
            f"{baseline.load.throughput:,.0f}",
            f"{result.throughput:,.0f}",
            str(result.errors),
            f"{result.median:.2f}",
            f"{result.percentile(0.99):.2f}",
            f"{baseline.cpu_us:.0f}",
            f"{measured.cpu_us:.0f}",
            f"{ratio:.2f}x",
            f"≥ {target}x {'met' if ratio >= target else 'NOT met'}",
        )
    Console(width=160).print(table)


@contextlib.contextmanager
def mixed_load_script(paths: dict[str, str]) -> Iterator[Path]:
    """A wrk script that GETs the paths in turn."""
    quoted = ", ".join(json.dumps(path) for path in paths.values())
    script = f"""
local paths = {{{quoted}}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        yield Path(file.name)


def rss_after_mixed_load(base_url: str, port: int, paths: dict[str, str], seconds: int) -> float:
    """The API process's resident memory (MB) after ``seconds`` of wrk on every path (the
    largest of the server's processes: the worker that serves, not the one that listens)."""
    if shutil.which("wrk") is None:
        return float("nan")
    with mixed_load_script(paths) as script:
        command = ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script), base_url]
        subprocess.run(command, capture_output=True, check=True)
    process = server_process(port)
    return max(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def load_demo(env: dict[str, str]) -> None:
    """The demo catalog (idempotent)."""
    subprocess.run([sys.executable, "-m", "agora", "demo"], env=env, cwd=ROOT, check=True)


def main() -> None:
    """Record, measure the bare app, Agora as ``agora api`` runs it, Agora under uvicorn; print
    the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side; the best counts")
    parser.add_argument("--memory-seconds", type=int, default=60)
    args = parser.parse_args()
    load = wrk_load(args)
    urls = bench_services()
    env = agora_env(urls)
    load_demo(env)
    with tempfile.TemporaryDirectory() as folder:
        recording = Path(folder) / "bytes.json"
        port = free_port()
        with agora_server(env, port) as url:
            paths = hot_paths(url)
            record(url, paths, recording)
            bare_env = {**env, "BENCH_BYTES_FILE": str(recording)}
            # Both servers stay up and each path is measured on one, then on the other: the
            # two sides of a ratio are seconds apart, not minutes, on a machine whose load drifts.
            with app_server(BARE, free_port(), env=bare_env) as bare_url:
                against_bare = measure_pairs(
                    bare_url, url, paths, ("bare", "agora"), load, args.rounds
                )
            with uvicorn_server(AGORA, free_port(), env=env) as uvicorn_url:
                against_uvicorn = measure_pairs(
                    uvicorn_url,
                    url,
                    paths,
                    ("agora on uvicorn", "agora on granian"),
                    load,
                    args.rounds,
                )
            rss = rss_after_mixed_load(url, port, paths, args.memory_seconds)
            print_pairs(
                "Hot paths: Agora (agora api: granian, uvloop, 1 process) vs bare Starlette "
                f"serving the same bytes on the same server, wrk -t1 -c{args.connections}, "
                f"best of {args.rounds} rounds of {args.duration}s each",
                against_bare,
                target=TARGET,
            )
            profile_misses(url, paths, against_bare, load, TARGET)
    flags = " ".join(UVICORN_FLAGS)
    print_pairs(
        f"Server: Agora as agora api runs it (granian) vs Agora on uvicorn {flags}",
        against_uvicorn,
        target=1.0,
    )
    seconds = args.memory_seconds
    print(f"API process RSS after {seconds}s of mixed load: {rss:.0f} MB (target ≤ 150 MB)")


if __name__ == "__main__":
    main()
