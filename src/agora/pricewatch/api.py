"""Price watch's staff endpoints: sites, targets, sitemap discovery, undercuts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from agora.core.dependencies import ServicesDep, SessionDep
from agora.core.money import Money
from agora.core.security import StaffPrincipal
from agora.crawler.api import FrontierDep
from agora.pricewatch import service
from agora.pricewatch.models import Target
from agora.pricewatch.schemas import (
    DiscoverRequest,
    DiscoverResponse,
    PriceChangeResponse,
    SiteCreate,
    SiteResponse,
    TargetCreate,
    TargetDetailResponse,
    TargetList,
    TargetResponse,
    TargetsCreate,
    UndercutList,
    UndercutResponse,
)

router = APIRouter(prefix="/pricewatch", tags=["price watch"])


def _target(target: Target) -> TargetResponse:
    return TargetResponse.model_validate(target, from_attributes=True)


@router.post(
    "/sites",
    status_code=status.HTTP_201_CREATED,
    response_model=SiteResponse,
    summary="Watch a site: politeness, recrawl bounds, extraction rules (409 site_exists)",
)
async def create_site(
    body: SiteCreate, _: StaffPrincipal, session: SessionDep, frontier: FrontierDep
) -> SiteResponse:
    terms = service.SiteTerms(
        base_url=body.base_url,
        delay_ms=body.delay_ms,
        max_concurrency=body.max_concurrency,
        recrawl_min_s=body.recrawl_min_s,
        recrawl_max_s=body.recrawl_max_s,
        rules=body.rules.model_dump(exclude_none=True),
    )
    site = await service.create_site(session, frontier, terms)
    return SiteResponse.model_validate(site, from_attributes=True)


@router.post(
    "/sites/{site_id}/discover",
    response_model=DiscoverResponse,
    summary="Read the site's sitemaps and watch the page URLs matching a pattern",
)
async def discover(
    site_id: uuid.UUID,
    body: DiscoverRequest,
    _: StaffPrincipal,
    session: SessionDep,
    frontier: FrontierDep,
    services: ServicesDep,
) -> DiscoverResponse:
    found = await service.discover(session, frontier, services.settings, site_id, body.pattern)
    return DiscoverResponse(listed=found.listed, matched=found.matched, added=found.added)


@router.post(
    "/targets",
    status_code=status.HTTP_201_CREATED,
    response_model=TargetResponse | TargetList,
    summary="Watch one page (answers the target) or a list of pages (answers {items})",
)
async def create_targets(
    body: TargetsCreate,
    request: Request,
    response: Response,
    _: StaffPrincipal,
    session: SessionDep,
    frontier: FrontierDep,
) -> TargetResponse | TargetList:
    items = body if isinstance(body, list) else [body]
    targets = await service.add_targets(
        session, frontier, [(item.url, item.variant_id) for item in items]
    )
    if isinstance(body, TargetCreate):
        response.headers["Location"] = request.url_for("get_target", target_id=targets[0].id).path
        return _target(targets[0])
    return TargetList(items=[_target(target) for target in targets])


@router.get(
    "/targets/{target_id}",
    response_model=TargetDetailResponse,
    summary="A watched page: last price, stock, last fetched, next due, change history",
)
async def get_target(
    target_id: uuid.UUID, _: StaffPrincipal, session: SessionDep, frontier: FrontierDep
) -> TargetDetailResponse:
    detail = await service.target_detail(session, frontier, target_id)
    return TargetDetailResponse(
        **_target(detail.target).model_dump(),
        state=detail.status.state.value,
        last_fetched_at=detail.status.last_fetched_at,
        next_due_at=detail.status.next_due_at,
        history=[
            PriceChangeResponse.model_validate(change, from_attributes=True)
            for change in detail.history
        ],
    )


@router.get(
    "/undercuts",
    response_model=UndercutList,
    summary="Watched pages priced below our variant's price, widest gap first",
)
async def list_undercuts(
    _: StaffPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UndercutList:
    undercuts = await service.undercuts(session, limit)
    return UndercutList(items=[_undercut(item) for item in undercuts])


def _undercut(item: service.Undercut) -> UndercutResponse:
    target = item.target
    currency = target.currency or ""
    assert target.variant_id is not None
    assert target.price_amount is not None
    return UndercutResponse(
        target_id=target.id,
        url=target.url,
        variant_id=target.variant_id,
        price=Money(amount=target.price_amount, currency=currency),
        our_price=Money(amount=item.our_price, currency=currency),
        gap=Money(amount=item.gap, currency=currency),
        in_stock=target.in_stock,
        changed_at=target.changed_at,
    )
