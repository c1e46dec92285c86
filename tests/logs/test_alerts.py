"""Alerts: rules CRUD, an episode pending → firing → resolved with hysteresis, one signed
notification per change to a real receiver, retries, the SSRF guard on the address connected to,
and beat + worker end to end."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from agora.core.db import Database
from agora.logs import alerts, notify
from agora.logs.models import AlertDelivery, AlertState
from agora.settings import Settings
from tests.logs.receiver import AlertReceiver
from tests.logs.support import NDJSON, load_all, ndjson, staff_headers
from tests.rebinding import RebindingName
from tests.support import BeatProcess, WorkerProcess, wait_for

SECRET = "whsec_test_secret_of_the_receiver"
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(microsecond=0)


@pytest.fixture
async def receiver() -> AsyncIterator[AlertReceiver]:
    hook = AlertReceiver(secret=SECRET)
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
def allow_private(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": True})


def rule_body(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "errors", "q": "level:error", "metric": "count", "op": ">", "threshold": 5,
        "window_s": 60, "for_s": 20, "hysteresis": 0.2, "webhook_url": url,
        "webhook_secret": SECRET, **overrides,
    }  # fmt: skip


async def send(
    client: httpx.AsyncClient, settings: Settings, at: dt.datetime, count: int, **fields: Any
) -> None:
    documents = [{"ts": at.isoformat(), "level": "error", "message": "boom", **fields}] * count
    answer = await client.post(
        "/api/v1/logs", content=ndjson(*documents), headers={**NDJSON, **staff_headers(settings)}
    )
    assert answer.json()["accepted"] == count


async def evaluate(database: Database, at: dt.datetime) -> list[alerts.Notification]:
    async with database.unit_of_work() as session:
        return await alerts.evaluate_rules(session, now=at)


async def deliver(
    database: Database, settings: Settings, notes: list[alerts.Notification], attempt: int = 1
) -> list[notify.DeliveryOutcome]:
    outcomes = []
    for note in notes:
        async with database.unit_of_work() as session:
            outcomes.append(
                await notify.deliver(
                    session, settings, note.episode_id, note.event, note.value, attempt
                )
            )
    return outcomes


async def firing(
    client: httpx.AsyncClient, settings: Settings, database: Database, redis: Redis, url: str
) -> list[alerts.Notification]:
    """The notification of a new rule notifying ``url`` (accepted even if private), fired by
    the line just shipped."""
    marker = str(uuid.uuid4())
    fields = rule_body(url, for_s=0, threshold=0, q=f"request_id:{marker}")
    async with database.unit_of_work() as session:
        await alerts.create_rule(session, fields, allow_private=True)
    await send(client, settings, T0, 1, request_id=marker)
    await load_all(database, redis)
    return await evaluate(database, T0 + dt.timedelta(seconds=1))


async def test_rules_can_be_created_read_changed_and_deleted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = staff_headers(settings)
    refused = await client.post(
        "/api/v1/alerts/rules", json=rule_body("http://127.0.0.1:9/hook"), headers=headers
    )
    assert refused.status_code == 422  # loopback is refused unless allowed
    assert refused.json()["code"] == "unsafe_target"
    bad_query = await client.post(
        "/api/v1/alerts/rules", json=rule_body("https://example.com", q="(x"), headers=headers
    )
    assert bad_query.json()["code"] == "invalid_query"
    body = rule_body("https://93.184.215.14/hook", webhook_secret=None)
    created = await client.post("/api/v1/alerts/rules", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["webhook_secret"].startswith("whsec_")
    location = created.headers["Location"]
    fetched = (await client.get(location, headers=headers)).json()
    assert fetched["state"] == "ok"
    assert "webhook_secret" not in fetched
    changed = await client.patch(location, json={"threshold": 10, "for_s": 0}, headers=headers)
    assert (changed.json()["threshold"], changed.json()["for_s"]) == (10, 0)
    listed = await client.get("/api/v1/alerts/rules", headers=headers)
    assert [rule["id"] for rule in listed.json()] == [fetched["id"]]
    assert (await client.delete(location, headers=headers)).status_code == 204
    assert (await client.get(location, headers=headers)).status_code == 404


async def test_an_error_rate_threshold_past_one_is_refused_on_create_and_on_change(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = staff_headers(settings)
    hook = "https://93.184.215.14/hook"
    refused = await client.post(
        "/api/v1/alerts/rules",
        json=rule_body(hook, metric="error_rate", threshold=2),
        headers=headers,
    )
    created = await client.post(
        "/api/v1/alerts/rules", json=rule_body(hook, threshold=2), headers=headers
    )
    changed = await client.patch(
        created.headers["Location"], json={"metric": "error_rate"}, headers=headers
    )
    kept = await client.get(created.headers["Location"], headers=headers)

    assert (refused.status_code, refused.json()["code"]) == (422, "bad_threshold")
    assert created.status_code == 201
    assert (changed.status_code, changed.json()["code"]) == (422, "bad_threshold")
    assert (kept.json()["metric"], kept.json()["threshold"]) == ("count", 2)


async def test_an_alert_fires_once_holds_through_hysteresis_and_resolves(
    app: Any,
    client: httpx.AsyncClient,
    allow_private: Settings,
    database: Database,
    redis: Redis,
    receiver: AlertReceiver,
) -> None:
    app.state.services = app.state.services.__class__(
        **{**app.state.services.__dict__, "settings": allow_private}
    )
    headers = staff_headers(allow_private)
    created = await client.post(
        "/api/v1/alerts/rules", json=rule_body(receiver.url), headers=headers
    )
    assert created.status_code == 201, created.text
    await send(client, allow_private, T0 - dt.timedelta(seconds=30), 10)
    await send(client, allow_private, T0 + dt.timedelta(seconds=15), 5)
    await send(client, allow_private, T0, 50, level="info")
    await load_all(database, redis)

    assert await evaluate(database, T0) == []  # 10 > 5: pending, not yet for 20 s
    assert await evaluate(database, T0 + dt.timedelta(seconds=10)) == []
    fired = await evaluate(database, T0 + dt.timedelta(seconds=25))
    assert [note.event for note in fired] == [AlertState.FIRING]
    assert await evaluate(database, T0 + dt.timedelta(seconds=26)) == []  # no repeat
    # 5 lines in the window: no longer > 5, but not below 5 - 20 %: still firing
    assert await evaluate(database, T0 + dt.timedelta(seconds=31)) == []
    resolved = await evaluate(database, T0 + dt.timedelta(seconds=80))
    assert [note.event for note in resolved] == [AlertState.RESOLVED]
    assert await evaluate(database, T0 + dt.timedelta(seconds=90)) == []

    outcomes = await deliver(database, allow_private, fired + resolved)
    assert [outcome.delivered for outcome in outcomes] == [True, True]
    assert [message["event"] for message in receiver.received] == ["firing", "resolved"]
    assert receiver.received[0]["value"] == 15  # 10 + 5 lines in the window when it fired
    assert receiver.received[1]["value"] == 0
    assert receiver.refused == 0
    episodes = (await client.get("/api/v1/alerts", headers=headers)).json()
    assert [episode["status"] for episode in episodes] == ["resolved"]
    assert episodes[0]["peak_value"] == 15
    fired_at = dt.datetime.fromisoformat(episodes[0]["fired_at"])
    assert fired_at == T0 + dt.timedelta(seconds=25)


async def test_a_failed_notification_is_retried_with_backoff_and_logged(
    app: Any,
    client: httpx.AsyncClient,
    allow_private: Settings,
    database: Database,
    redis: Redis,
    receiver: AlertReceiver,
) -> None:
    app.state.services = app.state.services.__class__(
        **{**app.state.services.__dict__, "settings": allow_private}
    )
    receiver.failures = 2
    body = rule_body(receiver.url, for_s=0)
    created = await client.post(
        "/api/v1/alerts/rules", json=body, headers=staff_headers(allow_private)
    )
    assert created.status_code == 201
    await send(client, allow_private, T0, 6)
    await load_all(database, redis)
    fired = await evaluate(database, T0 + dt.timedelta(seconds=1))
    outcomes = [
        (await deliver(database, allow_private, fired, attempt))[0] for attempt in (1, 2, 3)
    ]
    assert [(o.delivered, o.retry_in_s) for o in outcomes] == [
        (False, 2), (False, 4), (True, None)
    ]  # fmt: skip
    assert len(receiver.received) == 1
    async with database.sessionmaker() as session:
        log = (await session.scalars(select(AlertDelivery).order_by(AlertDelivery.id))).all()
    assert [(entry.attempt, entry.status_code) for entry in log] == [(1, 500), (2, 500), (3, 204)]
    assert log[0].error == "answered 500"


async def test_a_target_resolving_to_loopback_is_refused_unless_private_targets_are_allowed(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    redis: Redis,
    receiver: AlertReceiver,
) -> None:
    assert not settings.webhook_allow_private
    fired = await firing(
        client, settings, database, redis, receiver.url.replace("127.0.0.1", "localhost")
    )

    [refused] = await deliver(database, settings, fired)
    [allowed] = await deliver(
        database, settings.model_copy(update={"webhook_allow_private": True}), fired, attempt=2
    )

    assert (refused.delivered, refused.retry_in_s) == (False, 2)
    assert allowed.delivered
    assert len(receiver.received) == 1
    async with database.sessionmaker() as session:
        log = (await session.scalars(select(AlertDelivery).order_by(AlertDelivery.id))).all()
    assert log[0].status_code is None
    assert log[0].error is not None
    assert "'localhost' resolves to a non-public address" in log[0].error


async def test_a_notification_goes_to_the_address_checked_under_the_targets_name(
    client: httpx.AsyncClient,
    allow_private: Settings,
    database: Database,
    redis: Redis,
    receiver: AlertReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = RebindingName("alerts.rebinding.test").install(monkeypatch)
    url = receiver.url.replace("127.0.0.1", target.name)
    fired = await firing(client, allow_private, database, redis, url)
    target.rearm(answers=1)  # the name resolves once more, then no longer

    [outcome] = await deliver(database, allow_private, fired)

    assert outcome.delivered
    assert target.lookups == 1
    assert receiver.hosts == [url.removeprefix("http://").removesuffix("/hook")]


@pytest.mark.worker
async def test_beat_and_a_worker_evaluate_and_notify_end_to_end(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    redis: Redis,
    receiver: AlertReceiver,
    service_env: dict[str, str],
    celery_beat: Callable[..., BeatProcess],
) -> None:
    env = {**service_env, "AGORA_WEBHOOK_ALLOW_PRIVATE": "true"}
    async with database.unit_of_work() as session:
        fields = rule_body(receiver.url, for_s=0, threshold=0, q=f"request_id:{uuid.uuid4()}")
        fields.pop("webhook_secret")
        rule, _ = await alerts.create_rule(session, fields, allow_private=True)
        rule.webhook_secret = SECRET
    await send(client, settings, dt.datetime.now(dt.UTC), 1, request_id=fields["q"][11:])
    await load_all(database, redis)
    worker = WorkerProcess(env=env)
    worker.start()
    try:
        celery_beat(**env, AGORA_ALERT_EVALUATION_INTERVAL="1")

        async def notified() -> bool:
            return bool(receiver.received)

        await wait_for(notified, timeout=60, interval=0.2)
    finally:
        worker.stop()
    assert receiver.received[0]["event"] == "firing"
    assert receiver.received[0]["rule"]["id"] == str(rule.id)
