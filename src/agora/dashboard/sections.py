"""The sections every snapshot is made of, in the order they are read."""

from __future__ import annotations

from agora.dashboard import alerts_panel, commerce, crawl_panels, logs_panels
from agora.dashboard.snapshot import Section

DASHBOARD_SECTIONS: tuple[Section, ...] = (
    *commerce.SECTIONS,
    *logs_panels.SECTIONS,
    *alerts_panel.SECTIONS,
    *crawl_panels.SECTIONS,
)
