"""A provider callback reaching a real API whose Redis has stopped answering is applied and
acknowledged, not hung: verifying a payment's success and applying it need only
PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from agora.core.db import Database
from agora.payments.models import PaymentStatus
from agora.settings import Settings
from tests.payments import signing
from tests.payments.support import inbox_count, open_payment, reload
from tests.payments.test_api import STRIPE, stripe_paid
from tests.support import ApiProcess, RedisServer

CLIENT_TIMEOUT_S = 60  # generous: a hang is what fails


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server only this test uses."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.mark.timeout(240)
async def test_a_callback_while_redis_is_frozen_is_applied_and_acknowledged(
    api_server: Callable[..., ApiProcess],
    own_redis: RedisServer,
    database: Database,
    settings: Settings,
) -> None:
    server = await asyncio.to_thread(api_server, AGORA_REDIS_URL=own_redis.url)
    payment = await open_payment(database, settings, "stripe")
    body = stripe_paid(payment.id, 1999, event_id="evt_redis_frozen")

    async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT_S) as http:
        own_redis.freeze()
        try:
            answer = await http.post(STRIPE, content=body, headers=signing.stripe_headers(body))
        finally:
            own_redis.thaw()

    assert answer.status_code == 200, answer.text
    assert (await reload(database, payment.id)).status is PaymentStatus.SUCCEEDED
    assert await inbox_count(database) == 1
