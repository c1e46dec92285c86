"""The gRPC server process (``agora grpc``): the inventory service, health and reflection.

grpcio's asyncio server runs on one event loop with the process's own database pool and Redis
client, like an API worker. The standard health service reports SERVING once started and
NOT_SERVING while it drains on SIGTERM, so a load balancer stops sending calls before it stops.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.asyncio import Redis

from agora.core.db import Database
from agora.core.redis import create_redis
from agora.rpc.auth import BearerAuthInterceptor
from agora.rpc.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from agora.rpc.inventory_service import InventoryServicer
from agora.settings import Settings

INVENTORY_SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
_GRACE_S = 10.0


def build_server(
    settings: Settings, database: Database, redis: Redis, address: str
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """A server (not yet started) listening on ``address``; its health servicer and the port
    bound (useful with port 0)."""
    server = grpc.aio.server(interceptors=[BearerAuthInterceptor(settings)])
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(
        InventoryServicer(database, redis), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [INVENTORY_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME],
        server,
    )  # fmt: skip
    port = server.add_insecure_port(address)
    return server, health_servicer, port


async def serve(settings: Settings, database_url: str, redis_url: str, address: str) -> None:
    """Serve until SIGINT or SIGTERM, then drain calls for a grace period."""
    database = Database(
        database_url,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout,
    )
    redis = create_redis(redis_url, settings)
    server, health_servicer, _ = build_server(settings, database, redis, address)
    await server.start()
    for name in ("", INVENTORY_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
        await health_servicer.enter_graceful_shutdown()
        await server.stop(_GRACE_S)
    finally:
        await redis.aclose()
        await database.dispose()
