"""Helpers of the log platform tests: staff headers, loading the buffer, lines to send."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from redis.asyncio import Redis

from agora.core.db import Database
from agora.core.security import Role, issue_access_token
from agora.logs.buffer import backlog
from agora.logs.loader import Loader, ensure_group
from agora.settings import Settings

NDJSON = {"Content-Type": "application/x-ndjson"}


def staff_headers(settings: Settings) -> dict[str, str]:
    """The Authorization header of a member of staff."""
    token = issue_access_token(settings, uuid.uuid4(), Role.STAFF)
    return {"Authorization": f"Bearer {token}"}


async def load_all(database: Database, redis: Redis) -> int:
    """Run a loader in this process until the buffer is empty; returns the lines stored."""
    await ensure_group(redis)
    loader = Loader(database, redis, batch=50)
    stored = 0
    while await backlog(redis):
        stored += await loader.run_once(block_ms=10)
    return stored


def ndjson(*documents: dict[str, Any]) -> bytes:
    """A body of one JSON object per line."""
    return b"\n".join(orjson.dumps(document) for document in documents)


def nginx_line(
    path: str, status: int, *, seconds: float | None = 0.05, at: dt.datetime | None = None
) -> str:
    """An nginx ``combined`` line (with ``$request_time`` unless ``seconds`` is None)."""
    moment = (at or dt.datetime.now(dt.UTC)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    line = f'203.0.113.9 - - [{moment}] "GET {path} HTTP/1.1" {status} 512 "-" "curl/8.5"'
    return line if seconds is None else f"{line} {seconds}"
