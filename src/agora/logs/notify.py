"""Alert notifications: one signed POST per episode state change, retried with backoff.

The body is JSON ``{event, rule, episode}``; the ``X-Agora-Signature`` header is
``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with the rule's webhook secret (see
``core/signing.py``). The target is resolved once and refused if it is private, loopback or
link-local (unless ``AGORA_WEBHOOK_ALLOW_PRIVATE``); the request then goes to the very address
checked, under the target's name (``core/guarded_http.py``), so a second DNS answer cannot swap
in a private one. Every attempt is written to
``alert_deliveries``; a failed one (a network error or a non-2xx answer) is tried again after
2, 4, 8 … seconds, up to ``AGORA_ALERT_DELIVERY_RETRIES`` times.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.guarded_http import guarded_client
from agora.core.jobs import defer
from agora.core.netguard import UnsafeTarget
from agora.core.signing import signature_header
from agora.logs.alerts import DELIVER_TASK
from agora.logs.models import AlertDelivery, AlertEpisode, AlertRule, AlertState
from agora.settings import Settings

SIGNATURE_HEADER = "X-Agora-Signature"
TIMEOUT_S = 10.0
MAX_BACKOFF_S = 300


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt did: delivered, or failed (and whether another attempt is queued)."""

    delivered: bool
    retry_in_s: int | None


def payload(
    rule: AlertRule, episode: AlertEpisode, event: AlertState, value: float | None
) -> bytes:
    """The notification body: the change, with the value measured when it happened."""
    return orjson.dumps(
        {
            "event": event.value,
            "value": value,
            "rule": {
                "id": str(rule.id),
                "name": rule.name,
                "q": rule.q,
                "metric": rule.metric.value,
                "op": rule.op,
                "threshold": rule.threshold,
                "window_s": rule.window_s,
                "for_s": rule.for_s,
            },
            "episode": {
                "id": str(episode.id),
                "status": episode.status.value,
                "started_at": episode.started_at,
                "fired_at": episode.fired_at,
                "resolved_at": episode.resolved_at,
                "value": episode.value,
                "peak_value": episode.peak_value,
            },
        }
    )


async def deliver(
    session: AsyncSession,
    settings: Settings,
    episode_id: uuid.UUID,
    event: AlertState,
    value: float | None,
    attempt: int,
) -> DeliveryOutcome:
    """Make one attempt at an episode's notification and log it; queue the next on failure."""
    episode = await session.get(AlertEpisode, episode_id)
    if episode is None:
        return DeliveryOutcome(delivered=False, retry_in_s=None)  # the rule was deleted
    rule = await session.get(AlertRule, episode.rule_id)
    assert rule is not None
    body = payload(rule, episode, event, value)
    status_code, error = await _post(rule, body, settings)
    session.add(
        AlertDelivery(
            episode_id=episode.id,
            event=event,
            attempt=attempt,
            status_code=status_code,
            error=error,
        )
    )
    await session.flush()
    if error is None:
        return DeliveryOutcome(delivered=True, retry_in_s=None)
    if attempt > settings.alert_delivery_retries:
        return DeliveryOutcome(delivered=False, retry_in_s=None)
    delay = min(2**attempt, MAX_BACKOFF_S)
    retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
    defer(
        session, DELIVER_TASK, str(episode.id), event.value, value, attempt + 1, not_before=retry_at
    )
    return DeliveryOutcome(delivered=False, retry_in_s=delay)


async def _post(rule: AlertRule, body: bytes, settings: Settings) -> tuple[int | None, str | None]:
    """POST the body to the rule's webhook: ``(status, None)`` on 2xx, else the error."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header([rule.webhook_secret or ""], body),
        "User-Agent": "Agora-Alerts/1",
    }
    allow_private = settings.webhook_allow_private
    try:
        async with guarded_client(allow_private=allow_private, timeout=TIMEOUT_S) as http:
            answer = await http.post(rule.webhook_url, content=body, headers=headers)
    except UnsafeTarget as refusal:
        return None, refusal.detail
    except httpx.HTTPError as failure:
        return None, f"{type(failure).__name__}: {failure}"[:500]
    if answer.is_success:
        return answer.status_code, None
    return answer.status_code, f"answered {answer.status_code}"
