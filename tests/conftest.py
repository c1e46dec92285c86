"""Fixtures: the embedded PostgreSQL and Redis once per run, a clean database per test, an HTTP
client on the app, a query counter, and a real Celery worker for the tests that need one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import event, text

from agora.app import create_app
from agora.core.db import Database
from agora.core.embedded import EmbeddedPostgres, EmbeddedRedis, ServiceUrls, resolve_service_urls
from agora.migrations import upgrade
from agora.models import metadata
from agora.settings import Settings
from tests.support import (
    ROOT,
    ApiProcess,
    BeatProcess,
    QueryCounter,
    WorkerProcess,
    in_process_client,
    routed_requests,
)

TEST_DATA_DIR = Path(os.environ.get("AGORA_TEST_DATA_DIR", ROOT / ".agora-test"))


@pytest.fixture(scope="session")
def service_urls() -> Iterator[ServiceUrls]:
    """Embedded PostgreSQL and Redis for the whole run, migrated to head; the servers this run
    started are stopped at its end (servers already running, say from another run, are kept)."""
    postgres, redis = EmbeddedPostgres(TEST_DATA_DIR), EmbeddedRedis(TEST_DATA_DIR)
    started = [server for server in (postgres, redis) if not server.is_running()]
    urls = resolve_service_urls(TEST_DATA_DIR, None, None, None, database="agora_test")
    upgrade(urls.database_url)
    yield urls
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def settings(service_urls: ServiceUrls) -> Settings:
    """Settings pointing at the test services."""
    return Settings(
        env="test",
        data_dir=TEST_DATA_DIR,
        database_url=service_urls.database_url,
        redis_url=service_urls.redis_url,
        broker_url=service_urls.broker_url,
        order_payment_timeout=900,
        log_self_requests=False,  # only the tests of request logging want these lines
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def service_env(settings: Settings) -> dict[str, str]:
    """Environment for child processes (workers, servers) of the test services."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGORA_")}
    env.update(
        AGORA_ENV="test",
        AGORA_DATA_DIR=str(TEST_DATA_DIR),
        AGORA_DATABASE_URL=settings.database_url or "",
        AGORA_REDIS_URL=settings.redis_url or "",
        AGORA_BROKER_URL=settings.broker_url or "",
        AGORA_LOG_LEVEL="WARNING",
        AGORA_LOG_SELF_REQUESTS="false",
    )
    return env


@pytest.fixture(scope="session")
async def database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    """A database handle for assertions made directly on the tables."""
    db = Database(service_urls.database_url, pool_size=10)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def redis(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    """A Redis client on the test server."""
    client = Redis.from_url(service_urls.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def clean_state(database: Database, redis: Redis) -> AsyncIterator[None]:
    """Each test starts with empty tables and an empty Redis (both broker and cache databases)."""
    yield
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    if tables:
        async with database.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await redis.flushall()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process."""
    async with in_process_client(app) as http:
        yield http


@pytest.fixture
def routed(app: FastAPI) -> Iterator[list[str]]:
    """The method and path of every request that reached a route of the app, in order."""
    with routed_requests(app) as requests:
        yield requests


@pytest.fixture
def query_counter(app: FastAPI) -> Iterator[QueryCounter]:
    """Count the statements the app's engine sends (for N+1 tests)."""
    counter = QueryCounter()
    engine = app.state.services.database.engine.sync_engine

    def record(*args: Any) -> None:
        counter.statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield counter
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def celery_worker(service_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A real Celery worker on the test broker, stopped after the test."""
    worker = WorkerProcess(env=service_env)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def api_server(service_env: dict[str, str]) -> Iterator[Callable[..., ApiProcess]]:
    """Start real ``agora api`` servers: ``api_server(workers=2, AGORA_X="...")``, writing their
    output to ``log_path`` when given."""
    started: list[ApiProcess] = []

    def start(workers: int = 1, log_path: Path | None = None, **env: str) -> ApiProcess:
        server = ApiProcess(env={**service_env, **env}, workers=workers, log_path=log_path)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def celery_beat(service_env: dict[str, str]) -> Iterator[Callable[..., BeatProcess]]:
    """Start a real ``agora beat``: ``celery_beat(AGORA_ORDER_EXPIRY_SWEEP_INTERVAL="1")``."""
    started: list[BeatProcess] = []

    def start(**env: str) -> BeatProcess:
        beat = BeatProcess(env={**service_env, **env})
        started.append(beat)
        beat.start()
        return beat

    yield start
    for beat in started:
        beat.stop()
