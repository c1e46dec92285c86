"""Starting the local test sites (``testsite.py``) from a test, and reading their access log."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT, free_port


@dataclass(frozen=True)
class Hit:
    """One request a test site answered."""

    site: int
    path: str
    start: float
    end: float
    status: int
    agent: str = ""


@dataclass
class LocalSites:
    """Running test sites: their base URLs and their access log."""

    ports: list[int]
    log: Path

    def base(self, index: int) -> str:
        """The base URL of site ``index`` (in the order given)."""
        return f"http://127.0.0.1:{self.ports[index]}"

    def hits(self, index: int | None = None) -> list[Hit]:
        """Every request answered so far (by site ``index``, or by all), oldest start first."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        hits = [Hit(**json.loads(line)) for line in lines if line.strip()]
        if index is not None:
            hits = [hit for hit in hits if hit.site == self.ports[index]]
        return sorted(hits, key=lambda hit: hit.start)

    def set_price(self, index: int, path: str, price: int) -> None:
        """Change a page's price."""
        httpx.post(
            f"{self.base(index)}/_control", json={"prices": {path: price}}
        ).raise_for_status()


def max_in_flight(hits: list[Hit]) -> int:
    """The most requests a site was answering at one time."""
    events = sorted([(hit.start, 1) for hit in hits] + [(hit.end, -1) for hit in hits])
    in_flight = peak = 0
    for _, change in events:
        in_flight += change
        peak = max(peak, in_flight)
    return peak


def min_gap(hits: list[Hit]) -> float:
    """The shortest time between two consecutive request starts."""
    starts = sorted(hit.start for hit in hits)
    return min(b - a for a, b in itertools.pairwise(starts))


@contextmanager
def local_sites(tmp_path: Path, *sites: dict[str, Any]) -> Iterator[LocalSites]:
    """Serve ``sites`` (see ``testsite.py``) on free ports until the block ends."""
    ports = [free_port() for _ in sites]
    log = tmp_path / "access.log"
    config = {
        "log": str(log),
        "sites": [{**site, "port": p} for site, p in zip(sites, ports, strict=True)],
    }
    config_file = tmp_path / "sites.json"
    config_file.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.crawler.testsite", str(config_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        yield LocalSites(ports, log)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
