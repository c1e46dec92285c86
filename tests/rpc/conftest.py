"""A real ``agora grpc`` server process and channels to it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agora.rpc.inventory.v1 import inventory_pb2_grpc
from tests.support import ROOT, free_port

SERVICE_KEY = "svc-test-key-0123456789"


@dataclass
class GrpcProcess:
    """An ``agora grpc`` server on a free port."""

    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        """Where the server listens."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until its health service answers SERVING."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora", "grpc", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process.poll() is None, "the gRPC server exited"
                try:
                    answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    time.sleep(0.1)
        raise AssertionError("the gRPC server did not become healthy within 60s")

    def stop(self) -> None:
        """Stop the server (SIGTERM: it drains, then exits)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def grpc_server(service_env: dict[str, str]) -> Iterator[GrpcProcess]:
    """A running gRPC server accepting ``SERVICE_KEY``."""
    server = GrpcProcess(env={**service_env, "AGORA_SERVICE_KEYS": SERVICE_KEY}, port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def channel(grpc_server: GrpcProcess) -> AsyncIterator[grpc.aio.Channel]:
    """An asyncio channel to the server."""
    async with grpc.aio.insecure_channel(grpc_server.target) as opened:
        yield opened


@pytest.fixture
def inventory(channel: grpc.aio.Channel) -> inventory_pb2_grpc.InventoryServiceStub:
    """The inventory client (an asyncio stub on an asyncio channel)."""
    return inventory_pb2_grpc.InventoryServiceStub(channel)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a bearer token."""
    return (("authorization", f"Bearer {token}"),)


SERVICE = bearer(SERVICE_KEY)
