"""How many SQL statements a verified callback sends: pinned, so a change that adds round trips
shows."""

from __future__ import annotations

import httpx

from agora.core.db import Database
from agora.settings import Settings
from tests.payments import signing
from tests.payments.keys import RunKeys
from tests.payments.support import open_payment
from tests.support import QueryCounter

ALIPAY = "/api/v1/payments/webhooks/alipay"


async def test_a_first_delivery_sends_six_statements_and_a_duplicate_one(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    keys: RunKeys,
    query_counter: QueryCounter,
) -> None:
    payment = await open_payment(database, settings, "alipay", 1999, "CNY")
    alipay = signing.alipay_sdk(keys.alipay_platform, keys.alipay_app)
    body = signing.alipay_notify(alipay, payment.id, "19.99")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    counts = []
    for _ in range(2):
        query_counter.reset()
        response = await client.post(ALIPAY, content=body, headers=headers)
        assert (response.status_code, response.text) == (200, "success")
        counts.append(query_counter.count)

    # First: the inbox lookup, the payment's lock with the inbox insert, the capture, the
    # order's move with its outbox event, the reservation's move with its ledger line, the
    # stock level. Duplicate: the inbox lookup, outside any transaction (no BEGIN, no COMMIT).
    assert counts == [6, 1], query_counter.statements
