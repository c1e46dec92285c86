"""The rules of one delivery attempt: taking a due delivery, and what its outcome changes.

Retries back off exponentially (``base * 2^(n-1)``, capped) with jitter — each delay is drawn
between half and all of that — so that the retries of many deliveries that failed together
(an endpoint back from an outage) spread out instead of arriving as a second wave. A delivery
is given up once its retry window (3 days by default, from its first attempt) is spent.
An endpoint whose attempts have all failed for ``disable_after`` is disabled, and a
``webhook.endpoint_disabled`` event tells staff (the ops stream, the dashboard, and endpoints
subscribed to it).

Ordered event types (``events.is_ordered``) wait for the endpoint's earlier ordered delivery:
one taken out of turn is put back until that one succeeds or is given up, and whichever
finishes wakes the next.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import utcnow
from agora.core.jobs import defer
from agora.core.outbox import record_event
from agora.webhooks import repository
from agora.webhooks.events import ENDPOINT_DISABLED_TOPIC
from agora.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from agora.webhooks.service import DELIVER_TASK, signing_secrets

MAX_LOGGED_BODY = 2000
_WAIT_FOR_TURN = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts and when to give up (from settings)."""

    timeout: float
    base_delay: float
    max_delay: float
    retry_window: dt.timedelta
    disable_after: dt.timedelta

    def delay(self, attempt: int) -> float:
        """Seconds before the attempt after attempt number ``attempt`` (1-based), jittered."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 32))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret

    @property
    def lease(self) -> dt.timedelta:
        """How long a taken delivery is not due for anyone else: the request and a margin."""
        return dt.timedelta(seconds=self.timeout + 30)


@dataclass(frozen=True)
class Request:
    """What a worker sends for a delivery it took."""

    delivery_id: uuid.UUID
    url: str
    secrets: list[str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt came to."""

    attempted_at: dt.datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None

    @property
    def is_success(self) -> bool:
        """A 2xx answer; anything else (redirects included) is a failure."""
        return self.status_code is not None and 200 <= self.status_code < 300


async def take(
    session: AsyncSession, delivery_id: uuid.UUID, policy: RetryPolicy
) -> Request | None:
    """Take a due delivery for one attempt: counted and leased. None when it is not due, is
    taken by another worker, its endpoint is disabled, or an earlier ordered one comes first."""
    delivery = await repository.lock_due_delivery(session, delivery_id)
    if delivery is None:
        return None
    endpoint = await repository.get_endpoint(session, delivery.endpoint_id)
    if endpoint is None or not endpoint.is_active:
        return None
    now = utcnow()
    if delivery.is_ordered:
        first = await repository.earliest_pending_ordered(session, endpoint.id)
        if first is not None and first.id != delivery.id:
            delivery.next_attempt_at = max(first.next_attempt_at, now) + _WAIT_FOR_TURN
            return None
    delivery.attempt_count += 1
    delivery.last_attempt_at = now
    delivery.next_attempt_at = now + policy.lease
    if delivery.retry_until is None:
        delivery.retry_until = now + policy.retry_window
    return Request(delivery.id, endpoint.url, signing_secrets(endpoint, now), delivery.body)


async def record(
    session: AsyncSession, delivery_id: uuid.UUID, outcome: Outcome, policy: RetryPolicy
) -> DeliveryStatus | None:
    """Log an attempt and apply its outcome: delivered, retried later, or given up; the
    endpoint's failure streak, and its disabling when the streak is too long. The delivery's
    new status (None if it vanished with its endpoint)."""
    delivery = await repository.lock_pending_delivery(session, delivery_id)
    if delivery is None:
        return None
    await repository.add_attempt(
        session,
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=outcome.attempted_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=None if outcome.error is None else outcome.error[:500],
            response_body=(outcome.response_body or "")[:MAX_LOGGED_BODY] or None,
            is_success=outcome.is_success,
        ),
    )
    endpoint = await repository.lock_endpoint(session, delivery.endpoint_id)
    assert endpoint is not None, "deliveries go with their endpoint"
    now = utcnow()
    if outcome.is_success:
        delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, now
        endpoint.failing_since = None
    else:
        _schedule_retry(delivery, policy, now)
        endpoint.failing_since = endpoint.failing_since or outcome.attempted_at
        if endpoint.is_active and now - endpoint.failing_since >= policy.disable_after:
            endpoint.is_active, endpoint.disabled_at = False, now
            endpoint.disabled_reason = "every attempt failed since " + (
                endpoint.failing_since.isoformat()
            )
            record_event(
                session,
                ENDPOINT_DISABLED_TOPIC,
                {"endpoint_id": endpoint.id, "url": endpoint.url,
                 "failing_since": endpoint.failing_since},
            )  # fmt: skip
    if delivery.is_ordered and delivery.status != DeliveryStatus.PENDING:
        await _wake_next(session, delivery.endpoint_id, now)
    await session.flush()
    return delivery.status


def _schedule_retry(delivery: WebhookDelivery, policy: RetryPolicy, now: dt.datetime) -> None:
    """The next attempt after a backoff, or give up when it would fall past the window."""
    next_at = now + dt.timedelta(seconds=policy.delay(delivery.attempt_count))
    if delivery.retry_until is not None and next_at > delivery.retry_until:
        delivery.status = DeliveryStatus.FAILED
    else:
        delivery.next_attempt_at = next_at


async def _wake_next(session: AsyncSession, endpoint_id: uuid.UUID, now: dt.datetime) -> None:
    """Make the endpoint's next ordered delivery due now: it only waited for its turn."""
    following = await repository.earliest_pending_ordered(session, endpoint_id)
    if following is not None:
        following.next_attempt_at = now
        defer(session, DELIVER_TASK, str(following.id))
