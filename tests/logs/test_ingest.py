"""Ingest: both formats with bad lines mixed in, limits, authentication, keys, back-pressure."""

from __future__ import annotations

import datetime as dt

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select

from agora.core.db import Database
from agora.logs.buffer import INGEST_STREAM
from agora.logs.models import log_lines
from agora.settings import Settings
from tests.logs.support import NDJSON, load_all, ndjson, nginx_line, staff_headers

HOUR_AGO = float(int(dt.datetime.now(dt.UTC).timestamp()) - 3600)


async def stored_lines(database: Database) -> list[dict[str, object]]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(select(log_lines).order_by(log_lines.c.id))
        return [dict(row._mapping) for row in rows]


async def test_ndjson_lines_are_stored_and_bad_lines_refused_with_reasons(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis
) -> None:
    body = (
        ndjson(
            {"ts": "2026-01-01T00:00:00Z", "message": "too old"},
            {
                "level": "ERROR",
                "message": "payment failed",
                "status": 502,
                "provider": "alipay",
                "duration_ms": 12.5,
                "service": "pay",
                "path": "/api/v1/orders/42/pay",
            },
        )
        + b"\nnot json\n[1, 2]\n"
        + ndjson({"status": 700}, {"message": "plain", "ts": HOUR_AGO})
    )
    answer = await client.post(
        "/api/v1/logs", content=body, headers={**NDJSON, **staff_headers(settings)}
    )
    assert answer.status_code == 202, answer.text
    payload = answer.json()
    assert payload["accepted"] == 2
    assert [item["line"] for item in payload["rejected"]] == [1, 3, 4, 5]
    assert payload["rejected"][0]["reason"] == "ts is older than the retention period"
    assert "not JSON" in payload["rejected"][1]["reason"]
    assert payload["rejected"][3]["reason"] == "status must be between 100 and 599"
    assert await load_all(database, redis) == 2
    first, second = await stored_lines(database)
    assert (first["level"], first["status"]) == ("error", 502)
    assert first["attrs"] == {"provider": "alipay"}
    assert first["route"] == "/api/v1/orders/:id/pay"
    assert second["ts"] == dt.datetime.fromtimestamp(HOUR_AGO, dt.UTC)


async def test_nginx_lines_are_parsed_and_bad_ones_refused(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis
) -> None:
    lines = [
        nginx_line("/api/v1/orders/7?page=2", 500, seconds=0.25),
        "garbage that is no log line",
        nginx_line("/healthz", 200, seconds=None),
    ]
    answer = await client.post(
        "/api/v1/logs?format=nginx&service=edge",
        content="\n".join(lines),
        headers={"Content-Type": "text/plain", **staff_headers(settings)},
    )
    assert answer.status_code == 202
    assert answer.json() == {
        "accepted": 2,
        "rejected": [{"line": 2, "reason": "not an nginx combined line"}],
    }
    await load_all(database, redis)
    first, second = await stored_lines(database)
    assert (first["service"], first["status"], first["duration_ms"]) == ("edge", 500, 250.0)
    assert (first["path"], first["route"]) == ("/api/v1/orders/7?page=2", "/api/v1/orders/:id")
    assert (first["level"], first["ip"]) == ("error", "203.0.113.9")
    assert (second["duration_ms"], second["bytes"]) == (None, 512)


async def test_nginx_json_lines_use_nginx_variable_names(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis
) -> None:
    body = (
        ndjson(
            {
                "time_iso8601": dt.datetime.now(dt.UTC).isoformat(),
                "remote_addr": "198.51.100.1",
                "request_method": "POST",
                "request_uri": "/api/v1/carts",
                "status": "201",
                "request_time": "0.012",
                "body_bytes_sent": "88",
                "upstream_cache": "MISS",
            }
        )
        + b'\n{"status": "abc"}'
    )
    answer = await client.post(
        "/api/v1/logs?format=json",
        content=body,
        headers={"Content-Type": "text/plain", **staff_headers(settings)},
    )
    assert answer.json()["accepted"] == 1
    assert answer.json()["rejected"] == [{"line": 2, "reason": "status must be a number"}]
    await load_all(database, redis)
    (line,) = await stored_lines(database)
    assert (line["method"], line["status"], line["bytes"]) == ("POST", 201, 88)
    assert (line["duration_ms"], line["attrs"]) == (12.0, {"upstream_cache": "MISS"})


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient, settings: Settings) -> None:
    body = b"x" * (settings.max_body_size + 1)
    answer = await client.post(
        "/api/v1/logs", content=body, headers={**NDJSON, **staff_headers(settings)}
    )
    assert answer.status_code == 413


async def test_ingest_keys_are_shown_once_work_and_can_be_revoked(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    created = await client.post(
        "/api/v1/logs/keys", json={"name": "edge nginx"}, headers=staff_headers(settings)
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("agl_")
    shipper = {**NDJSON, "Authorization": f"Bearer {key}"}
    sent = await client.post("/api/v1/logs", content=ndjson({"message": "hi"}), headers=shipper)
    assert sent.status_code == 202
    searched = await client.get("/api/v1/logs/search", headers={"Authorization": f"Bearer {key}"})
    assert searched.status_code == 401  # a key ships lines and reads nothing
    deleted = await client.delete(created.headers["Location"], headers=staff_headers(settings))
    assert deleted.status_code == 204
    refused = await client.post("/api/v1/logs", content=ndjson({"message": "hi"}), headers=shipper)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_ingest_key"
    anonymous = await client.post("/api/v1/logs", content=b"{}", headers=NDJSON)
    assert anonymous.status_code == 401


async def test_a_full_buffer_answers_503_with_retry_after(
    client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    async with redis.pipeline(transaction=False) as pipeline:
        for _ in range(settings.log_buffer_max_batches):
            pipeline.xadd(INGEST_STREAM, {b"r": b"[]"})
        await pipeline.execute()
    answer = await client.post(
        "/api/v1/logs",
        content=ndjson({"message": "hi"}),
        headers={**NDJSON, **staff_headers(settings)},
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.json()["code"] == "log_buffer_full"


async def test_ingest_is_rate_limited_per_key_in_lines(
    app: object, client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = {**NDJSON, **staff_headers(settings)}
    body = ndjson(*({"message": f"line {n}"} for n in range(60)))
    limited = settings.model_copy(update={"rate_limit_log_ingest": "100/minute"})
    app.state.services = app.state.services.__class__(  # type: ignore[attr-defined]
        **{**app.state.services.__dict__, "settings": limited}  # type: ignore[attr-defined]
    )
    assert (await client.post("/api/v1/logs", content=body, headers=headers)).status_code == 202
    refused = await client.post("/api/v1/logs", content=body, headers=headers)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


async def test_unknown_content_type_is_415(client: httpx.AsyncClient, settings: Settings) -> None:
    answer = await client.post(
        "/api/v1/logs",
        content=b"x",
        headers={"Content-Type": "text/csv", **staff_headers(settings)},
    )
    assert answer.status_code == 415
    assert (await client.get("/api/v1/logs/search?q=level:x")).status_code == 401


async def test_count_of_lines_matches(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(log_lines)) == 0
