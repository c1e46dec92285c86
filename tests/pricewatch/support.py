"""Watching local sites, and reading price watch's rows, in tests."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from agora.core.db import Database
from agora.core.outbox import OutboxEvent
from agora.crawler.frontier import Frontier
from agora.pricewatch import service
from agora.pricewatch.models import PriceChange
from agora.pricewatch.readings import UNDERCUT_TOPIC


async def history(database: Database, target_id: uuid.UUID) -> list[int | None]:
    """A target's recorded prices, oldest first."""
    async with database.unit_of_work() as session:
        rows = await session.scalars(
            select(PriceChange.price_amount)
            .where(PriceChange.target_id == target_id)
            .order_by(PriceChange.id)
        )
        return list(rows)


async def changes_per_target(database: Database) -> dict[uuid.UUID, int]:
    """How many changes were recorded for each target."""
    async with database.unit_of_work() as session:
        rows = await session.execute(
            select(PriceChange.target_id, func.count()).group_by(PriceChange.target_id)
        )
        return {row[0]: row[1] for row in rows}


async def undercut_events(database: Database) -> list[dict[str, object]]:
    """The payloads of every undercut event, oldest first."""
    async with database.unit_of_work() as session:
        rows = await session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.topic == UNDERCUT_TOPIC)
            .order_by(OutboxEvent.id)
        )
        return list(rows)


async def watch(
    database: Database,
    frontier: Frontier,
    base_url: str,
    paths: list[str],
    variant_id: uuid.UUID | None = None,
    rules: dict[str, str] | None = None,
    **policy: int,
) -> list[uuid.UUID]:
    """A site and its pages, watched through the service, queued once committed."""
    terms = service.SiteTerms(
        base_url=base_url,
        delay_ms=policy.get("delay_ms", 0),
        max_concurrency=policy.get("max_concurrency", 4),
        recrawl_min_s=policy.get("recrawl_min_s", 1),
        recrawl_max_s=policy.get("recrawl_max_s", 1),
        rules=rules or {},
    )
    async with database.unit_of_work() as session:
        await service.create_site(session, frontier, terms)
        targets = await service.add_targets(
            session, frontier, [(base_url + path, variant_id) for path in paths]
        )
        return [target.id for target in targets]
