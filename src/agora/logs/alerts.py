"""Alert rules and their episodes: conditions on the logs, evaluated every few seconds.

A rule measures ``metric`` (count, error rate, p95 or p99 of ``duration_ms``) over the lines
matching ``q`` in the last ``window_s`` seconds and compares it with ``threshold``. When the
condition starts to hold, an episode opens as ``pending``; if it still holds ``for_s`` seconds
later the episode is ``firing`` and one notification is sent. It resolves (one more
notification) only once the value has crossed back past the threshold by the ``hysteresis``
fraction, so a value hovering at the threshold does not flap. A pending episode whose condition
stops holding closes as resolved without a notification: it never fired.

Evaluation locks each rule (``FOR UPDATE SKIP LOCKED``): several workers evaluating at once
share the rules and never send a notification twice.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import utcnow
from agora.core.errors import NotFound, ValidationFailed
from agora.core.jobs import defer
from agora.core.netguard import resolve_allowed
from agora.logs import repository
from agora.logs.models import AlertEpisode, AlertMetric, AlertRule, AlertState
from agora.logs.query import parse, to_sql

DELIVER_TASK = "agora.logs.alerts.deliver"
EVALUATE_TASK = "agora.logs.alerts.evaluate"
RULE_FIELDS = (
    "name", "q", "metric", "op", "threshold", "window_s", "for_s", "hysteresis", "webhook_url",
)  # fmt: skip


@dataclass(frozen=True)
class Notification:
    """A state change of an episode to announce: ``firing`` or ``resolved``, with the value
    measured when it changed."""

    episode_id: uuid.UUID
    event: AlertState
    value: float | None


async def create_rule(
    session: AsyncSession, fields: dict[str, Any], *, allow_private: bool
) -> tuple[AlertRule, str]:
    """A new rule and its webhook secret (generated unless given; shown to the caller once)."""
    await _check(fields, allow_private=allow_private)
    check_threshold_shape(fields["metric"], fields["threshold"])
    secret = fields.pop("webhook_secret", None) or "whsec_" + secrets.token_urlsafe(24)
    rule = AlertRule(id=uuid.uuid4(), state=AlertState.OK, webhook_secret=secret, **fields)
    session.add(rule)
    await session.flush()
    return rule, secret


async def _check(fields: dict[str, Any], *, allow_private: bool) -> None:
    if "q" in fields:
        parse(fields["q"])
    if "webhook_url" in fields:
        await resolve_allowed(fields["webhook_url"], allow_private=allow_private)


async def get_rule(session: AsyncSession, rule_id: uuid.UUID) -> AlertRule:
    """A rule; 404 when there is none."""
    rule = await session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound("No such alert rule.", code="alert_rule_not_found")
    return rule


async def list_rules(session: AsyncSession) -> Sequence[AlertRule]:
    """Every rule, by name."""
    return (await session.scalars(select(AlertRule).order_by(AlertRule.name, AlertRule.id))).all()


async def update_rule(
    session: AsyncSession, rule_id: uuid.UUID, changes: dict[str, Any], *, allow_private: bool
) -> AlertRule:
    """Change a rule; its current episode goes on under the new condition."""
    rule = await get_rule(session, rule_id)
    await _check(changes, allow_private=allow_private)
    check_threshold_shape(
        changes.get("metric", rule.metric), changes.get("threshold", rule.threshold)
    )
    for name, value in changes.items():
        setattr(rule, name, value)
    await session.flush()
    return rule


async def delete_rule(session: AsyncSession, rule_id: uuid.UUID) -> None:
    """Delete a rule with its episodes and delivery log."""
    await session.delete(await get_rule(session, rule_id))
    await session.flush()


async def list_episodes(
    session: AsyncSession,
    *,
    rule_id: uuid.UUID | None = None,
    status: AlertState | None = None,
    limit: int = 100,
) -> Sequence[AlertEpisode]:
    """Episodes, most recent first, optionally of one rule or in one state."""
    statement = select(AlertEpisode).order_by(AlertEpisode.started_at.desc()).limit(limit)
    if rule_id is not None:
        statement = statement.where(AlertEpisode.rule_id == rule_id)
    if status is not None:
        statement = statement.where(AlertEpisode.status == status)
    return (await session.scalars(statement)).all()


async def measure(session: AsyncSession, rule: AlertRule, now: dt.datetime) -> float | None:
    """The rule's metric over its window ending at ``now`` (None: no latency to measure)."""
    start = now - dt.timedelta(seconds=rule.window_s)
    count, errors, percentiles = await repository.window_metric(
        session, to_sql(parse(rule.q)), start, now
    )
    if rule.metric == AlertMetric.COUNT:
        return float(count)
    if rule.metric == AlertMetric.ERROR_RATE:
        return errors / count if count else 0.0
    if percentiles is None:
        return None
    value = percentiles[0 if rule.metric == AlertMetric.P95 else 1]
    return None if value is None else float(value)


def _holds(rule: AlertRule, value: float | None) -> bool:
    if value is None:
        return False
    return value > rule.threshold if rule.op == ">" else value < rule.threshold


def _cleared(rule: AlertRule, value: float | None) -> bool:
    """Whether a firing rule's value is back past the threshold by the hysteresis margin."""
    if value is None:
        return True
    margin = abs(rule.threshold) * rule.hysteresis
    return value <= rule.threshold - margin if rule.op == ">" else value >= rule.threshold + margin


async def evaluate_rules(
    session: AsyncSession, now: dt.datetime | None = None
) -> list[Notification]:
    """Evaluate every rule not being evaluated elsewhere; notifications are sent (as jobs)
    once this transaction commits, and returned."""
    now = now or utcnow()
    rules = (
        await session.scalars(
            select(AlertRule).order_by(AlertRule.id).with_for_update(skip_locked=True)
        )
    ).all()
    notifications = []
    for rule in rules:
        notification = await _evaluate(session, rule, now)
        if notification is not None:
            notifications.append(notification)
            defer(
                session, DELIVER_TASK, str(notification.episode_id), notification.event.value,
                notification.value, 1,
            )  # fmt: skip
    await session.flush()
    return notifications


async def _evaluate(
    session: AsyncSession, rule: AlertRule, now: dt.datetime
) -> Notification | None:
    value = await measure(session, rule, now)
    rule.last_value, rule.evaluated_at = value, now
    episode = await _open_episode(session, rule)
    if episode is None:
        if not _holds(rule, value):
            return None
        assert value is not None
        episode = AlertEpisode(
            id=uuid.uuid4(), rule_id=rule.id, status=AlertState.PENDING, started_at=now,
            value=value, peak_value=value,
        )  # fmt: skip
        session.add(episode)
        rule.state = AlertState.PENDING
        return _fire_if_due(rule, episode, now, value)
    if value is not None:
        episode.value = value
        worse = max if rule.op == ">" else min
        episode.peak_value = worse(episode.peak_value, value)
    if episode.status == AlertState.PENDING:
        if not _holds(rule, value):
            _close(rule, episode, now)
            return None
        return _fire_if_due(rule, episode, now, value)
    if _cleared(rule, value):
        _close(rule, episode, now)
        return Notification(episode.id, AlertState.RESOLVED, value)
    return None


def _fire_if_due(
    rule: AlertRule, episode: AlertEpisode, now: dt.datetime, value: float | None
) -> Notification | None:
    if now - episode.started_at < dt.timedelta(seconds=rule.for_s):
        return None
    episode.status = rule.state = AlertState.FIRING
    episode.fired_at = now
    return Notification(episode.id, AlertState.FIRING, value)


def _close(rule: AlertRule, episode: AlertEpisode, now: dt.datetime) -> None:
    episode.status = AlertState.RESOLVED
    episode.resolved_at = now
    rule.state = AlertState.OK


async def _open_episode(session: AsyncSession, rule: AlertRule) -> AlertEpisode | None:
    statement = select(AlertEpisode).where(
        AlertEpisode.rule_id == rule.id,
        AlertEpisode.status.in_([AlertState.PENDING, AlertState.FIRING]),
    )
    return (await session.scalars(statement)).first()


def check_threshold_shape(metric: AlertMetric, threshold: float) -> None:
    """422 for a threshold that cannot make sense for the metric (an error rate above 1)."""
    if metric == AlertMetric.ERROR_RATE and not 0 <= threshold <= 1:
        raise ValidationFailed("An error rate threshold is between 0 and 1.", code="bad_threshold")
