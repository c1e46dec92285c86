"""Stopping the API: a worker that cannot stop gracefully is killed, it never holds the stop.

A granian worker told to stop during its app's startup misses the signal and serves on; a
frozen worker stands in for it here, since it ignores SIGTERM for as long as it stays frozen.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil

from agora.serving import WORKER_STOP_TIMEOUT
from tests.support import ApiProcess


def test_a_worker_that_will_not_stop_is_killed_and_the_api_stops(
    api_server: Callable[..., ApiProcess],
) -> None:
    server = api_server(workers=2)
    assert server.process is not None
    frozen, other = psutil.Process(server.process.pid).children()
    frozen.suspend()

    server.process.terminate()

    assert server.process.wait(timeout=WORKER_STOP_TIMEOUT * 3) == 0
    assert not frozen.is_running()
    assert not other.is_running()
