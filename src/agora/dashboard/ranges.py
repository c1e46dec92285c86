"""The time ranges of the picker and the bucket width each one is drawn with.

Every range has at most 60 buckets, so a chart series stays small enough for the snapshot's size
budget whatever the range; one minute is the finest step because the log platform rolls up per
minute.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class TimeRange:
    """A picker choice: how far back the charts reach and how wide each bucket is."""

    name: str
    window_s: int
    step_s: int

    def start(self, now: dt.datetime) -> dt.datetime:
        """The first bucket's start: the window back from ``now``, aligned to the step."""
        first = int(now.timestamp()) - self.window_s + self.step_s
        return dt.datetime.fromtimestamp(first - first % self.step_s, dt.UTC)

    @property
    def buckets(self) -> int:
        """How many buckets the window holds."""
        return self.window_s // self.step_s


RANGES = {
    time_range.name: time_range
    for time_range in (
        TimeRange("15m", 15 * 60, 60),
        TimeRange("1h", 3600, 60),
        TimeRange("24h", 24 * 3600, 30 * 60),
        TimeRange("7d", 7 * 24 * 3600, 3 * 3600),
    )
}
DEFAULT_RANGE = RANGES["15m"]
