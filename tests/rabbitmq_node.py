"""A private RabbitMQ node for tests that change node-wide settings (``consumer_timeout``), so
the shared broker and other test runs are left alone."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support import free_port

_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the Debian package's, without its user switch


def server_command() -> str | None:
    """The ``rabbitmq-server`` to run, or None when RabbitMQ is not installed."""
    return _SERVER if Path(_SERVER).exists() else shutil.which("rabbitmq-server")


@contextlib.contextmanager
def rabbitmq_node(*, consumer_timeout_ms: int) -> Iterator[str]:
    """Run a RabbitMQ node of our own whose channels are closed when a delivery stays
    unacknowledged longer than ``consumer_timeout_ms`` (checked every second); yields its URL."""
    command = server_command()
    assert command is not None, "rabbitmq-server is not installed"
    port, dist_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="agora-rabbitmq-") as home:
        base = Path(home)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {port}\nconsumer_timeout = {consumer_timeout_ms}\n"
        )
        (base / "advanced.config").write_text("[{rabbit, [{channel_tick_interval, 1000}]}].\n")
        (base / "enabled_plugins").write_text("[].\n")
        env = {
            **os.environ,
            "HOME": home,
            "RABBITMQ_NODENAME": f"agora-test-{uuid.uuid4().hex[:8]}@localhost",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
        }
        with (base / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [command], env=env, stdout=log, stderr=log, start_new_session=True
            )
        try:
            _wait_for_port(port, process)
            yield f"amqp://guest:guest@127.0.0.1:{port}//"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the RabbitMQ node exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise AssertionError("the RabbitMQ node did not listen within 60s")
