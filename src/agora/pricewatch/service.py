"""Price watch's rules: watching sites and pages, their history, undercuts.

Pages are added to the crawl frontier only once the rows that describe them are committed, so
a crawler never fetches a page price watch does not know yet. What fetched pages say is recorded
by ``readings`` (in crawler processes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import call_after_commit
from agora.core.errors import Conflict, NotFound, ValidationFailed
from agora.crawler.frontier import Frontier, HostPolicy, UrlStatus, canonical_url, host_of
from agora.pricewatch import repository
from agora.pricewatch.models import PriceChange, Site, Target
from agora.settings import Settings

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
    # Reading sitemaps takes the crawler's HTTP client and an XML parser (aiohttp, parsel and
    # lxml: about 14 MB); an API process that never discovers a site never loads them.
    from agora.pricewatch import sitemaps

    listed = await sitemaps.listed_pages(frontier, settings, site.base_url)
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
