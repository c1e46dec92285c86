"""The crawler's staff endpoint: what every host's queue and gate look like right now."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from agora.core.dependencies import ServicesDep
from agora.core.security import StaffPrincipal
from agora.crawler import service
from agora.crawler.frontier import Frontier, frontier_for
from agora.crawler.schemas import CrawlStatsResponse, HostStatsResponse

router = APIRouter(prefix="/crawler", tags=["crawler"])


async def _frontier(services: ServicesDep) -> Frontier:
    return frontier_for(services.redis, services.settings)


FrontierDep = Annotated[Frontier, Depends(_frontier)]


@router.get(
    "/stats",
    response_model=CrawlStatsResponse,
    summary="Per host: queued, leased, fetched, errors, next allowed start; pages/s overall",
)
async def crawl_stats(_: StaffPrincipal, frontier: FrontierDep) -> CrawlStatsResponse:
    stats = await service.crawl_stats(frontier)
    return CrawlStatsResponse(
        hosts=[HostStatsResponse(**asdict(host)) for host in stats.hosts],
        pages_per_second=stats.pages_per_second,
    )
