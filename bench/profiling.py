"""Where a server's CPU goes while a benchmark loads it: py-spy samples, summed by function.

A benchmark whose target is not met prints this after its table, so that the figure comes with
what remains: the functions most often running when sampled (own time), and the frames most
often on the stack (inclusive time: the frame and everything it called). Samples are taken from
the server process and its children (granian's workers), at 200 Hz, without pausing them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

T = TypeVar("T")
_LINE_NUMBER = re.compile(r":\d+\)$")
_SOURCE = re.compile(r"\(([^()]+)\)$")  # the file a frame's function is in
_SAMPLING_RATE = 200
# Inclusive shares are shown for the code a request runs through, not for the process plumbing
# (multiprocessing, the CLI, the server's entry) that is under every sample.
_REQUEST_CODE = (
    "(agora/", "(sqlalchemy/", "(asyncpg/", "(redis/", "(fastapi/", "(starlette/", "(pydantic",
    "(prometheus_client/", "(structlog/", "(jwt/", "(orjson",
)  # fmt: skip
_ENTRY_POINTS = ("(agora/cli.py)", "(agora/__main__.py)", "(agora/serving.py)")
# A worker's main thread sits in this frame while granian's Rust runtime does the HTTP I/O.
_SERVER_RUNTIME = "MPServer._spawn_asgi_lifespan_worker"
_SERVER_RUNTIME_NAME = "granian's Rust runtime (HTTP I/O)"


@dataclass(frozen=True)
class Profile:
    """Samples by function: own counts, inclusive counts, and how many samples in all."""

    samples: int
    own: Counter[str]
    inclusive: Counter[str]

    def top(self, counts: Counter[str], count: int) -> list[tuple[str, float]]:
        """The ``count`` functions with most samples in ``counts``, with their share in %."""
        return [(name, 100 * hits / self.samples) for name, hits in counts.most_common(count)]

    def by_package(self) -> Counter[str]:
        """Own samples summed by package (by module for Agora's own: ``agora/orders``)."""
        packages: Counter[str] = Counter()
        for function, hits in self.own.items():
            if function == _SERVER_RUNTIME_NAME:
                packages["granian"] += hits
                continue
            found = _SOURCE.search(function)
            path = found.group(1).removesuffix(".py").split("/") if found else [function]
            packages["/".join(path[:2]) if path[0] == "agora" else path[0]] += hits
        return packages


def py_spy() -> str | None:
    """The py-spy command beside this interpreter, or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_during(
    pid: int, seconds: int, load: Callable[[], T], *, gil: bool = False
) -> tuple[T, Profile | None]:
    """Run ``load`` while sampling process ``pid`` (and its children) for ``seconds``; the
    load's result and the profile (None, with the reason printed, when py-spy cannot sample).
    With ``gil``, only threads holding the GIL are sampled: Python's CPU, not its waits."""
    command = py_spy()
    if command is None:
        print("no profile: py-spy is not installed (pip install py-spy)")
        return load(), None
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "samples.txt"
        record = [command, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
        record += ["--rate", str(_SAMPLING_RATE), "--duration", str(seconds)]
        record += ["--gil"] if gil else []
        sampler = subprocess.Popen(
            [*record, "--format", "raw", "--output", str(output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        result = load()
        _, errors = sampler.communicate()
        if not output.exists():
            print(f"no profile: py-spy failed ({errors.strip().splitlines()[-1:]})")
            return result, None
        return result, _read(output)


def _read(samples: Path) -> Profile:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        hits = int(count)
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        frames = [frame for frame in frames if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += hits
        leaf = frames[-1]
        own[_SERVER_RUNTIME_NAME if leaf.startswith(_SERVER_RUNTIME) else leaf] += hits
        for frame in set(frames):
            if any(package in frame for package in _REQUEST_CODE):
                inclusive[frame] += hits
    return Profile(total, own, inclusive)


def print_profile(title: str, profile: Profile | None, *, top: int = 12) -> None:
    """The top functions by own and by inclusive samples, side by side."""
    if profile is None or not profile.samples:
        return
    table = Table(title=f"{title} ({profile.samples:,} samples)")
    table.add_column("own %", justify="right")
    table.add_column("function (own time)")
    table.add_column("incl. %", justify="right")
    table.add_column("frame (inclusive)")
    own = profile.top(profile.own, top)
    inclusive = profile.top(profile.inclusive, top)
    for (own_name, own_share), (name, share) in zip(own, inclusive, strict=False):
        table.add_row(f"{own_share:.1f}", own_name, f"{share:.1f}", name)
    Console(width=200).print(table)


def print_packages(title: str, sides: dict[str, tuple[Profile, int]], *, top: int = 14) -> None:
    """Each side's own samples by package, as milliseconds a unit of work (an order, a
    request: ``sides`` maps a side's name to its profile and how many units its load did
    while sampled), the packages the first side spends most in first."""
    counted = {name: (profile.by_package(), units) for name, (profile, units) in sides.items()}
    first, _ = next(iter(counted.values()))
    table = Table(title=title)
    table.add_column("package (own time)")
    for name in counted:
        table.add_column(f"{name}, ms each", justify="right")
    for package in sorted(first, key=first.__getitem__, reverse=True)[:top]:
        cells = [
            f"{1000 * hits.get(package, 0) / _SAMPLING_RATE / max(units, 1):.2f}"
            for hits, units in counted.values()
        ]
        table.add_row(package, *cells)
    Console(width=200).print(table)
