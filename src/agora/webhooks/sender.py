"""Sending one delivery: take it, POST the signed body, record the outcome.

The HTTP request runs between two short transactions, never inside one: a slow receiver holds
no row lock and no database connection. The body is the delivery's JSON, signed over the exact
bytes sent (``Agora-Signature``, the scheme of ``core.signing``, one ``v1`` per valid secret).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from agora.core.db import Database, utcnow
from agora.core.guarded_http import guarded_client
from agora.core.netguard import UnsafeTarget
from agora.core.serialization import dumps
from agora.core.signing import signature_header
from agora.webhooks import delivery
from agora.webhooks.delivery import Outcome, Request, RetryPolicy
from agora.webhooks.models import DeliveryStatus

SIGNATURE_HEADER = "Agora-Signature"
USER_AGENT = "Agora-Webhooks/1"


async def send(
    database: Database, delivery_id: uuid.UUID, policy: RetryPolicy, *, allow_private: bool
) -> DeliveryStatus | None:
    """Attempt a delivery if it is due; its status afterwards (None when not attempted)."""
    async with database.unit_of_work() as session:
        request = await delivery.take(session, delivery_id, policy)
    if request is None:
        return None
    outcome = await post(request, timeout_s=policy.timeout, allow_private=allow_private)
    async with database.unit_of_work() as session:
        return await delivery.record(session, delivery_id, outcome, policy)


async def post(request: Request, *, timeout_s: float, allow_private: bool) -> Outcome:
    """POST a delivery's signed body once; what came of it (never raises for the receiver's
    failures: a refused target, a timeout and a 500 are all outcomes to log)."""
    body = dumps(request.body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(request.secrets, body),
        "Agora-Event-Id": str(request.body["id"]),
    }
    attempted_at, started = utcnow(), time.perf_counter()

    def elapsed_ms() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        # httpx's timeout bounds each read; this bounds the whole attempt (a trickling answer).
        async with (
            asyncio.timeout(timeout_s),
            guarded_client(allow_private=allow_private, timeout=timeout_s) as client,
            client.stream("POST", request.url, content=body, headers=headers) as response,
        ):
            answer = await _head_of(response)
    except UnsafeTarget as exc:
        return Outcome(attempted_at, elapsed_ms(), error=f"refused: {exc.detail}")
    except TimeoutError:
        return Outcome(attempted_at, elapsed_ms(), error=f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Outcome(attempted_at, elapsed_ms(), error=f"{type(exc).__name__}: {exc}")
    return Outcome(
        attempted_at, elapsed_ms(), status_code=response.status_code, response_body=answer
    )


async def _head_of(response: httpx.Response) -> str:
    """The start of an answer's body, as much as the log keeps (the rest is never read)."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= delivery.MAX_LOGGED_BODY:
            break
    return head[: delivery.MAX_LOGGED_BODY].decode("utf-8", errors="replace")
