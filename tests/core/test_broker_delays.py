"""No message waits in the broker for long: RabbitMQ closes the channel of a worker holding an
unacknowledged delivery past ``consumer_timeout`` (30 min by default), so every countdown or ETA
published anywhere is at most ``MAX_BROKER_DELAY_S``; work due later waits as a database row."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery.signals import before_task_publish
from redis.asyncio import Redis
from sqlalchemy import select

from agora.core.db import Database
from agora.core.jobs import MAX_BROKER_DELAY_S, ScheduledJob
from agora.flashsale.service import END_SALE_TASK
from agora.settings import Settings
from tests.flashsale.support import create_sale, published_variant, sale_body, staff
from tests.support import ROOT

SOURCE = ROOT / "src" / "agora"
DELAY_KEYWORDS = {"countdown", "eta"}


def _module_constants(tree: ast.Module) -> dict[str, object]:
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    return constants


def _delays(path: Path) -> Iterator[tuple[str, object]]:
    """Every ``countdown=``/``eta=`` argument of a call in ``path``: where, and its value (the
    expression's source when it is not a constant)."""
    tree = ast.parse(path.read_text())
    constants = _module_constants(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg not in DELAY_KEYWORDS:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            value = keyword.value
            if isinstance(value, ast.Constant):
                yield where, value.value
            elif isinstance(value, ast.Name) and value.id in constants:
                yield where, constants[value.id]
            else:
                yield where, ast.unparse(value)


def test_no_publish_anywhere_waits_in_the_broker_beyond_a_few_minutes() -> None:
    delays = [delay for path in sorted(SOURCE.rglob("*.py")) for delay in _delays(path)]

    assert MAX_BROKER_DELAY_S <= 300
    assert delays, "the scan finds the delays it is meant to check"
    too_long = [
        (where, value)
        for where, value in delays
        if not isinstance(value, int | float) or value > MAX_BROKER_DELAY_S
    ]
    assert too_long == []


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """The headers of every message this process publishes while the test runs."""
    seen: list[dict[str, Any]] = []

    def record(headers: dict[str, Any] | None = None, **_: object) -> None:
        seen.append(dict(headers or {}))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


async def test_a_sale_ending_in_hours_waits_as_a_due_row_not_as_a_delayed_message(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    redis: Redis,
    published: list[dict[str, Any]],
) -> None:
    variant_id = await published_variant(database, redis, stock=5)
    ends_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
    body = sale_body(variant_id, 2, ends_at=ends_at.isoformat())

    sale = await create_sale(client, await staff(database, settings), body)

    async with database.unit_of_work() as session:
        [job] = (await session.scalars(select(ScheduledJob))).all()
    assert (job.name, job.args, job.published_at) == (END_SALE_TASK, [sale["id"]], None)
    assert job.due_at == ends_at
    assert all(header.get("eta") is None for header in published), published
