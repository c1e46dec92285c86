"""``wrk`` as the load generator for plain GETs: a C client far lighter than any Python one, so
the server is what is measured. Falls back to the aiohttp harness where wrk is not installed."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from dataclasses import dataclass

from bench.harness import LoadResult, get, run_load

_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult(LoadResult):
    """What wrk reported: totals and its own latency percentiles."""

    total: int = 0
    per_second: float = 0.0
    percentiles_ms: dict[int, float] | None = None

    @property
    def requests(self) -> int:
        """Requests answered, errors included."""
        return self.total

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.per_second * (1 - self.errors / self.total) if self.total else 0.0

    def percentile(self, fraction: float) -> float:
        """The latency percentile wrk reported (50 or 99), in milliseconds."""
        return (self.percentiles_ms or {}).get(round(fraction * 100), float("nan"))

    @property
    def median(self) -> float:
        """The median latency in milliseconds."""
        return self.percentile(0.5)


async def measure_get(
    name: str, base_url: str, path: str, *, connections: int = 32, duration: int = 5
) -> LoadResult:
    """GET ``path`` from ``connections`` clients for ``duration`` seconds, with wrk if present."""
    if shutil.which("wrk") is None:
        return await run_load(name, base_url, get(path), concurrency=connections, duration=duration)
    target = base_url + path
    await asyncio.to_thread(_wrk, connections, 1, target)  # warm-up: caches filled
    output = await asyncio.to_thread(_wrk, connections, duration, target)
    return parse_wrk(name, output)


def _wrk(connections: int, duration: int, url: str) -> str:
    command = ["wrk", "-t1", "-c", str(connections), f"-d{duration}s", "--latency", url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def parse_wrk(name: str, output: str) -> WrkResult:
    """A result from wrk's ``--latency`` report."""
    total = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    failed += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    percentiles = {
        int(match[1]): float(match[2]) * _UNITS_MS[match[3]] for match in _LATENCY.finditer(output)
    }
    return WrkResult(
        name, errors=failed, total=total, per_second=per_second, percentiles_ms=percentiles
    )
