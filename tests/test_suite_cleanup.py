"""``make test`` leaves nothing running: the embedded servers a run starts, it stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agora.core.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.support import ROOT


def test_a_test_run_stops_the_servers_it_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGORA_")}
    env["AGORA_TEST_DATA_DIR"] = str(data_dir)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/core/test_signing.py"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    assert (data_dir / "postgres").exists(), "the inner run did not start its own servers"
    assert not EmbeddedPostgres(data_dir).is_running()
    assert not EmbeddedRedis(data_dir).is_running()
