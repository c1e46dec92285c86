"""``wrk`` as the load generator: a C client far lighter than any Python one, so the server is
what is measured. Plain GETs fall back to the aiohttp harness where wrk is not installed; a
sequence of prepared requests (``RequestSequence``) is replayed by a Lua script that wrk runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.harness import LoadResult, get, run_load

_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult(LoadResult):
    """What wrk reported: totals and its own latency percentiles."""

    total: int = 0
    per_second: float = 0.0
    percentiles_ms: dict[int, float] | None = None
    non_2xx: int = 0

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


def wrk_arguments(description: str | None) -> argparse.ArgumentParser:
    """The options every wrk benchmark takes: its client count, seconds per measured run, and
    API processes per server."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1, help="API processes per server")
    return parser


def wrk_load(args: argparse.Namespace) -> dict[str, int]:
    """The ``connections`` and ``duration`` of parsed wrk options, as the measuring calls take
    them."""
    return {"connections": args.connections, "duration": args.duration}


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


@dataclass(frozen=True)
class PreparedRequest:
    """One request of a sequence, sent as is."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


class RequestSequence:
    """Requests that wrk sends in order, one after the other over all its connections, from a
    given position on (so a second run can take up where the first stopped) and from the start
    again once the sequence is used up. Needs wrk: a Python client would be the bottleneck."""

    def __init__(self, requests: Sequence[PreparedRequest]) -> None:
        self.requests = requests

    def measure(
        self,
        name: str,
        base_url: str,
        *,
        start: int = 0,
        connections: int = 32,
        duration: int = 5,
        refusals_are_answers: bool = False,
    ) -> WrkResult:
        """Send the sequence from position ``start`` for ``duration`` seconds; with
        ``refusals_are_answers`` a 4xx counts as an answer, not an error."""
        if shutil.which("wrk") is None:
            raise RuntimeError("wrk is not installed (`bash deploy/install-tools.sh`)")
        with self._script() as script:
            command = ["wrk", "-t1", "-c", str(connections), f"-d{duration}s", "--latency"]
            command += ["-s", str(script), base_url, "--", str(start)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return parse_wrk(name, output, refusals_are_answers=refusals_are_answers)

    @contextlib.contextmanager
    def _script(self) -> Iterator[Path]:
        entries = ",\n".join(_lua_entry(request) for request in self.requests)
        script = f"""
local sequence = {{
{entries}
}}
local prepared, position = {{}}, 0
init = function(args)
  position = tonumber(args[1] or "0")
  for i, entry in ipairs(sequence) do
    prepared[i] = wrk.format(entry[1], entry[2], entry[3], entry[4])
  end
end
request = function()
  local next_request = prepared[position % #prepared + 1]
  position = position + 1
  return next_request
end
"""
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
            file.write(script)
            file.flush()
            yield Path(file.name)


def _lua_entry(request: PreparedRequest) -> str:
    """A request as the Lua table the script formats: ``{method, path, {headers}, body}``."""
    headers = ", ".join(
        f"[{_lua_string(key.encode())}] = {_lua_string(value.encode())}"
        for key, value in request.headers.items()
    )
    method, path = _lua_string(request.method.encode()), _lua_string(request.path.encode())
    return f"{{{method}, {path}, {{{headers}}}, {_lua_string(request.body)}}}"


def _lua_string(value: bytes) -> str:
    """A Lua string literal of any bytes (three-digit decimal escapes for the unprintable)."""
    return '"' + "".join(_LUA_BYTES[byte] for byte in value) + '"'


_LUA_BYTES = [
    chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\' else f"\\{byte:03d}"
    for byte in range(256)
]


def _wrk(connections: int, duration: int, url: str) -> str:
    command = ["wrk", "-t1", "-c", str(connections), f"-d{duration}s", "--latency", url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def parse_wrk(name: str, output: str, *, refusals_are_answers: bool = False) -> WrkResult:
    """A result from wrk's ``--latency`` report: socket errors and timeouts are errors, and so
    are answers other than 2xx and 3xx unless ``refusals_are_answers``."""
    total = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    non_2xx = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    failed = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    failed += 0 if refusals_are_answers else non_2xx
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    percentiles = {
        int(match[1]): float(match[2]) * _UNITS_MS[match[3]] for match in _LATENCY.finditer(output)
    }
    return WrkResult(
        name,
        errors=failed,
        total=total,
        per_second=per_second,
        percentiles_ms=percentiles,
        non_2xx=non_2xx,
    )


def server_process(port: int) -> psutil.Process:
    """The process serving ``port``: the one listening on it or, when that is one of a
    server's workers (they inherit its socket), the server process whose descendants are every
    worker (the topmost ancestor running the same command)."""
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == "LISTEN":
            assert connection.pid is not None
            process = psutil.Process(connection.pid)
            parent = process.parent()
            while parent is not None and parent.cmdline() == process.cmdline():
                process, parent = parent, parent.parent()
            return process
    raise RuntimeError(f"nobody listens on {port}")


@dataclass(frozen=True)
class Measured:
    """One path under wrk on one server, with the server's CPU per request: on a shared
    machine the CPU a request costs the server moves far less than its req/s."""

    load: LoadResult
    cpu_us: float


def cpu_seconds_by_process(root: psutil.Process) -> dict[int, float]:
    """CPU seconds (user + system) used so far by ``root`` and each of its descendants, by
    process id (a process gone meanwhile is left out)."""
    used = {}
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            used[process.pid] = times.user + times.system
    return used


def server_cpu_seconds(process: psutil.Process) -> float:
    """CPU time of a server process and of its workers."""
    return sum(cpu_seconds_by_process(process).values())


def measure_on(name: str, base_url: str, path: str, load: dict[str, int]) -> Measured:
    """``path`` under wrk on the server at ``base_url``."""
    process = server_process(int(base_url.rsplit(":", 1)[1]))
    before = server_cpu_seconds(process)
    result = asyncio.run(measure_get(name, base_url, path, **load))
    spent = server_cpu_seconds(process) - before
    return Measured(result, spent / result.requests * 1e6 if result.requests else float("nan"))
