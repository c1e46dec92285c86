"""Checkouts driven by wrk: each of its threads one buyer on one connection, running the flow
in ``checkout_flow.lua``. A checkout is three requests whose answers feed the next (the cart's
id), which the aiohttp harness can send too, but at about a millisecond of client CPU an order:
on two cores that is CPU taken from the server being measured. wrk's C client costs a small
fraction of that, so the server is what the figure measures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.harness import LoadResult

SCRIPT = Path(__file__).with_name("checkout_flow.lua")


def wrk_available() -> bool:
    """Whether wrk is installed (``bash deploy/install-tools.sh``)."""
    return shutil.which("wrk") is not None


def run_flow(
    name: str,
    base_url: str,
    buyers: Sequence[str],
    *,
    retry: bool,
    variant_id: uuid.UUID,
    address: dict[str, str],
    duration: float,
) -> LoadResult:
    """``len(buyers)`` buyers checking out (or, with ``retry``, resending their finished
    order) for ``duration`` seconds; each buyer a line as ``checkout_flow.lua`` reads it."""
    with tempfile.NamedTemporaryFile("w", suffix=".buyers") as listed:
        listed.write("\n".join(buyers) + "\n")
        listed.flush()
        clients = str(len(buyers))
        command = ["wrk", "-t", clients, "-c", clients, f"-d{max(1, round(duration))}s"]
        command += ["-s", str(SCRIPT), base_url, "--", "retry" if retry else "checkout"]
        command += [str(variant_id), uuid.uuid4().hex, json.dumps(address)]
        environment = {**os.environ, "AGORA_BENCH_BUYERS": listed.name}
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, env=environment
        ).stdout
    return _parsed(name, output)


def _parsed(name: str, output: str) -> LoadResult:
    """The result ``done()`` of the script printed."""
    printed = ("orders ", "latencies ")
    lines = dict(line.split(" ", 1) for line in output.splitlines() if line.startswith(printed))
    counts = lines["orders"].split()
    latencies = [float(seconds) for seconds in lines.get("latencies", "").split()]
    return LoadResult(name, latencies=latencies, errors=int(counts[2]), elapsed=float(counts[4]))
