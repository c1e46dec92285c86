"""Embedded services start on demand, are reused while they run, and stop cleanly."""

from __future__ import annotations

from pathlib import Path

import psutil
import redis

from agora.core.embedded import EmbeddedPostgres, EmbeddedRedis, broker_url_for_redis


def test_redis_is_started_reused_and_stopped(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path)
    url = embedded.start()
    try:
        client = redis.Redis.from_url(url)
        client.set("kept", "1")
        pid = int(embedded.pidfile.read_text())
        assert EmbeddedRedis(tmp_path).start() == url
        assert int(embedded.pidfile.read_text()) == pid
        assert client.get("kept") == b"1"
    finally:
        embedded.stop()
    assert not embedded.is_running()
    assert not psutil.pid_exists(pid)


def test_redis_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path)
    redis.Redis.from_url(embedded.start()).set("stock", "42")
    embedded.stop()
    try:
        assert redis.Redis.from_url(embedded.start()).get("stock") == b"42"
    finally:
        embedded.stop()


def test_postgres_is_started_reused_and_stopped(tmp_path: Path) -> None:
    embedded = EmbeddedPostgres(tmp_path)
    url = embedded.start("shop")
    try:
        assert embedded.is_running()
        assert embedded.start("shop") == url
        assert embedded.url("shop") == url
        assert url.startswith("postgresql+asyncpg://postgres@/shop?host=")
    finally:
        embedded.stop()
    assert not embedded.is_running()
    assert embedded.url() is None


def test_broker_url_uses_another_database_of_the_same_redis() -> None:
    assert (
        broker_url_for_redis("unix:///run/r.sock?db=0")
        == "redis+socket:///run/r.sock?virtual_host=1"
    )
    assert broker_url_for_redis("redis://cache:6379/0") == "redis://cache:6379/1"
    assert broker_url_for_redis("redis://cache:6379") == "redis://cache:6379/1"
