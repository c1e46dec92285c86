"""The alerts part of a snapshot: episodes firing now, the most recent episodes and every rule
with its state, read through the log platform's alert functions.

Alerts do not depend on the time range: they are what is true now.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agora.core.dependencies import AppServices
from agora.dashboard.ranges import TimeRange
from agora.dashboard.snapshot import Section
from agora.logs import alerts
from agora.logs.models import AlertEpisode, AlertState

MAX_RULES = 20
RECENT_EPISODES = 8


async def alerts_section(services: AppServices, _: dt.datetime, __: TimeRange) -> dict[str, Any]:
    """Firing episodes, recent episodes and rules, each naming its rule."""
    async with services.database.sessionmaker() as session:
        rules = (await alerts.list_rules(session))[:MAX_RULES]
        firing = await alerts.list_episodes(session, status=AlertState.FIRING, limit=MAX_RULES)
        recent = await alerts.list_episodes(session, limit=RECENT_EPISODES)
    names = {rule.id: rule.name for rule in rules}
    return {
        "alerts": {
            "firing": [_episode(episode, names) for episode in firing],
            "recent": [_episode(episode, names) for episode in recent],
            "rules": [
                {
                    "name": rule.name,
                    "condition": f"{rule.metric} {rule.op} {rule.threshold:g}",
                    "state": str(rule.state),
                    "value": rule.last_value,
                }
                for rule in rules
            ],
        }
    }


def _episode(episode: AlertEpisode, names: dict[Any, str]) -> dict[str, Any]:
    return {
        "rule": names.get(episode.rule_id, str(episode.rule_id)[:8]),
        "status": str(episode.status),
        "value": episode.value,
        "peak": episode.peak_value,
        "since": (episode.fired_at or episode.started_at).isoformat(),
        "resolved_at": episode.resolved_at.isoformat() if episode.resolved_at else None,
    }


SECTIONS = (Section(alerts_section),)
