"""Price watch's rules: watching sites and pages, recording what their pages say, undercuts.

Pages are added to the crawl frontier only once the rows that describe them are committed, so
a crawler never fetches a page price watch does not know yet. A reading is recorded only when
it differs from the last one (see ``repository.record_change``): a page fetched again after a
crash, or by two crawlers, adds nothing; an undercut event is written with the change that made
it, so there is one per change, never one per fetch.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import call_after_commit
from agora.core.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from agora.core.outbox import record_event
from agora.crawler.fetch import HopRefused
from agora.crawler.frontier import Frontier, HostPolicy, UrlStatus, canonical_url, host_of
from agora.crawler.process import polite_fetcher
from agora.pricewatch import repository, sitemaps
from agora.pricewatch.extract import Reading, read_page
from agora.pricewatch.models import PriceChange, Site, Target
from agora.settings import Settings

UNDERCUT_TOPIC = "pricewatch.undercut"
NEAR_PRICE_FRACTION = 0.10
HISTORY_LIMIT = 100


@dataclass(frozen=True)
class SiteTerms:
    """What staff say about a site."""

    base_url: str
    delay_ms: int
    max_concurrency: int
    recrawl_min_s: int
    recrawl_max_s: int
    rules: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetDetail:
    """A target, its place in the frontier, and its newest changes."""

    target: Target
    status: UrlStatus
    history: Sequence[PriceChange]


@dataclass(frozen=True)
class Undercut:
    """A target priced below our variant: by how much."""

    target: Target
    our_price: int
    gap: int


@dataclass(frozen=True)
class Discovery:
    """What a sitemap read found: page URLs listed, matching the pattern, newly watched."""

    listed: int
    matched: int
    added: int


def policy_of(site: Site) -> HostPolicy:
    """The crawl policy a site's settings ask for."""
    return HostPolicy(site.delay_ms, site.max_concurrency, site.recrawl_min_s, site.recrawl_max_s)


async def create_site(session: AsyncSession, frontier: Frontier, terms: SiteTerms) -> Site:
    """Watch a site; 409 ``site_exists`` when its host is watched already."""
    if terms.recrawl_max_s < terms.recrawl_min_s:
        raise ValidationFailed("recrawl_max_s must not be below recrawl_min_s.")
    base_url = canonical_url(terms.base_url)
    site = await repository.insert_site(
        session,
        {
            "host": host_of(base_url),
            "base_url": base_url,
            "delay_ms": terms.delay_ms,
            "max_concurrency": terms.max_concurrency,
            "recrawl_min_s": terms.recrawl_min_s,
            "recrawl_max_s": terms.recrawl_max_s,
            "rules": terms.rules,
        },
    )
    if site is None:
        raise Conflict("This site is watched already.", code="site_exists")
    host, policy = site.host, policy_of(site)
    call_after_commit(session, lambda: frontier.configure_host(host, policy))
    return site


async def add_targets(
    session: AsyncSession, frontier: Frontier, pages: Sequence[tuple[str, uuid.UUID | None]]
) -> list[Target]:
    """Watch pages (URL, optional variant of ours); a page watched already is kept as it is,
    its variant set if one is given. 422 ``unknown_site`` for a page of a site not watched."""
    urls = [canonical_url(url) for url, _ in pages]
    sites = await repository.sites_by_host(session, sorted({host_of(url) for url in urls}))
    unknown = sorted({host_of(url) for url in urls} - sites.keys())
    if unknown:
        raise ValidationFailed(
            f"Add the site first: {', '.join(unknown)} is not watched.", code="unknown_site"
        )
    variant_ids = sorted({variant for _, variant in pages if variant is not None})
    missing = set(variant_ids) - (await repository.variant_prices(session, variant_ids)).keys()
    if missing:
        raise ValidationFailed(f"No variant {sorted(missing)[0]}.", code="variant_not_found")
    rows: dict[str, dict[str, Any]] = {}
    for url, (_, variant_id) in zip(urls, pages, strict=True):
        row = rows.setdefault(url, {"id": uuid.uuid4(), "url": url, "variant_id": None})
        row["site_id"] = sites[host_of(url)].id
        row["variant_id"] = variant_id or row["variant_id"]
    await repository.insert_targets(session, list(rows.values()))
    found = await repository.targets_by_url(session, list(rows))
    unique_urls = list(rows)
    call_after_commit(session, lambda: _queue(frontier, unique_urls))
    return [found[url] for url in urls]


async def _queue(frontier: Frontier, urls: list[str]) -> None:
    await frontier.add(urls)


async def discover(
    session: AsyncSession,
    frontier: Frontier,
    settings: Settings,
    site_id: uuid.UUID,
    pattern: str,
) -> Discovery:
    """Read a site's sitemaps (politely: see ``sitemaps``) and watch the pages whose URL
    matches ``pattern``; 503 ``site_unavailable`` when its robots.txt cannot be read or its
    gate stays closed (paused, circuit open) past the fetch timeout."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValidationFailed(f"pattern is not a regular expression: {error}.") from error
    site = await repository.site(session, site_id)
    if site is None:
        raise NotFound("No such site.", code="site_not_found")
    try:
        async with polite_fetcher(frontier, settings, connections=4) as gate:
            listed = await sitemaps.sitemap_urls(gate, site.base_url)
    except HopRefused as refused:
        wait = refused.retry_after_s
        raise ServiceUnavailable(
            f"{site.host} cannot be read now: {refused.reason}.",
            code="site_unavailable",
            headers={"Retry-After": str(math.ceil(wait))} if wait else None,
        ) from refused
    matched = sitemaps.matching(listed, pattern, site.host)
    known = await repository.targets_by_url(session, [canonical_url(url) for url in matched])
    targets = await add_targets(session, frontier, [(url, None) for url in matched])
    added = len({target.id for target in targets} - {target.id for target in known.values()})
    return Discovery(len(listed), len(matched), added)


async def target_detail(
    session: AsyncSession, frontier: Frontier, target_id: uuid.UUID
) -> TargetDetail:
    """A target with its frontier status and change history; 404 ``target_not_found``."""
    target = await repository.target(session, target_id)
    if target is None:
        raise NotFound("No such target.", code="target_not_found")
    status = await frontier.status(target.url)
    return TargetDetail(target, status, await repository.history(session, target_id, HISTORY_LIMIT))


async def undercuts(session: AsyncSession, limit: int) -> list[Undercut]:
    """Targets priced below our variant's price, widest gap first."""
    rows = await repository.undercuts(session, limit)
    return [Undercut(target, ours, ours - (target.price_amount or 0)) for target, ours, _ in rows]


async def recent_changes(session: AsyncSession, limit: int) -> list[repository.RecentChange]:
    """The newest recorded changes of any page, newest first, each with the price it replaced."""
    return await repository.recent_changes(session, limit)


async def sync_frontier(session: AsyncSession, frontier: Frontier) -> int:
    """Give the frontier every site's policy and every target (it keeps what it has); a crawler
    does this on start, so nothing committed is missed if an after-commit step failed."""
    for site in await repository.all_sites(session):
        await frontier.configure_host(site.host, policy_of(site))
    return await frontier.add(await repository.all_target_urls(session))


async def record_pages(
    session: AsyncSession, pages: Sequence[tuple[str, bytes, str]]
) -> list[tuple[bool, int]]:
    """Read fetched pages (URL, body, Content-Type) and record the changed readings with their
    undercut events; per page, whether it changed and how urgent it is (0-100: near our price
    is urgent)."""
    targets = await repository.watched_pages(session, [page[0] for page in pages])
    rules = await repository.site_rules(session, sorted({t.site_id for t in targets.values()}))
    variant_ids = [t.variant_id for t in targets.values() if t.variant_id is not None]
    ours = await repository.variant_prices(session, variant_ids) if variant_ids else {}
    readings: dict[str, Reading] = {}
    for url, body, content_type in pages:
        target = targets.get(url)
        if target is None:
            continue
        reading = read_page(body, url, rules.get(target.site_id), content_type)
        if reading is not None:
            readings[url] = reading
    changed = await repository.record_changes(
        session,
        [
            repository.NewReading(
                targets[url].id, reading.price_amount, reading.currency, reading.in_stock
            )
            for url, reading in readings.items()
            if _differs(targets[url], reading)
        ],
    )
    verdicts = []
    for url, _, _ in pages:
        reading = readings.get(url)
        if reading is None:
            verdicts.append((False, 0))
            continue
        target = targets[url]
        our_price = ours.get(target.variant_id) if target.variant_id else None
        if target.id in changed and our_price is not None:
            _note_undercut(session, target, reading, our_price)
        verdicts.append((target.id in changed, _urgency(reading, our_price)))
    return verdicts


def _differs(target: repository.WatchedPage, reading: Reading) -> bool:
    """Whether a reading differs from the target's as loaded (the UPDATE checks it again)."""
    return (target.price_amount, target.currency, target.in_stock) != (
        reading.price_amount,
        reading.currency,
        reading.in_stock,
    )


def _note_undercut(
    session: AsyncSession,
    target: repository.WatchedPage,
    reading: Reading,
    our_price: tuple[int, str],
) -> None:
    amount, currency = our_price
    if reading.currency != currency or reading.price_amount >= amount:
        return
    record_event(
        session,
        UNDERCUT_TOPIC,
        {
            "target_id": target.id,
            "url": target.url,
            "variant_id": target.variant_id,
            "price": {"amount": reading.price_amount, "currency": currency},
            "our_price": {"amount": amount, "currency": currency},
            "gap": amount - reading.price_amount,
            "in_stock": reading.in_stock,
            "observed_at": dt.datetime.now(dt.UTC),
        },
    )


def _urgency(reading: Reading, our_price: tuple[int, str] | None) -> int:
    """100 at our price, falling to 0 at ``NEAR_PRICE_FRACTION`` away from it."""
    if our_price is None or reading.currency != our_price[1] or our_price[0] <= 0:
        return 0
    distance = abs(reading.price_amount - our_price[0]) / our_price[0]
    return round(100 * max(0.0, 1 - distance / NEAR_PRICE_FRACTION))
