"""Opening hours of a pickup point: intervals per weekday, in the point's own time zone.

Stored as ``{"monday": [{"opens": "09:00", "closes": "18:00"}], ...}``; a day that is absent is
closed. An interval whose ``closes`` is not after its ``opens`` runs past midnight into the next
day (``22:00``-``02:00``), and ``24:00`` closes at the end of the day. Whether a point is open is
decided on its local wall clock, so daylight-saving changes need nothing special.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_END_OF_DAY = 24 * 60


def minutes(clock: str) -> int:
    """Minutes since midnight of ``HH:MM`` (``24:00`` allowed)."""
    hours, _, mins = clock.partition(":")
    return int(hours) * 60 + int(mins)


def is_open(
    opening_hours: Mapping[str, Sequence[Mapping[str, str]]], time_zone: str, at: dt.datetime
) -> bool:
    """Whether the hours are open at the instant ``at`` (timezone-aware)."""
    local = at.astimezone(ZoneInfo(time_zone))
    now = local.hour * 60 + local.minute
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for interval in opening_hours.get(today, ()):
        opens, closes = minutes(interval["opens"]), minutes(interval["closes"])
        if opens <= now < (closes if closes > opens else _END_OF_DAY):
            return True
    for interval in opening_hours.get(yesterday, ()):
        opens, closes = minutes(interval["opens"]), minutes(interval["closes"])
        if closes <= opens and now < closes:
            return True
    return False
