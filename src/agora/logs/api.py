"""The log API: ingest (staff tokens or ingest keys), ingest keys, search, stats and top.

Ingest authenticates either an access token of staff or an ingest key (``agl_…``), both sent
as ``Authorization: Bearer``; it is metered per key, one unit per accepted line, instead of by
the per-client request budget (a shipper sends many lines in few requests).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from agora.core.dependencies import ServicesDep, SessionDep
from agora.core.errors import AgoraError, Unauthorized
from agora.core.ratelimit import rate_limit
from agora.core.security import StaffPrincipal, decode_access_token, ensure_staff
from agora.logs import service
from agora.logs.parsing import Format
from agora.logs.results import CreatedKey, IngestResult, SearchPage, Stats, TopValue
from agora.logs.schemas import KeyCreate

INGEST_PATH = "/logs"
router = APIRouter(tags=["logs"])
FromQuery = Annotated[dt.datetime | None, Query(alias="from", description="Start (RFC 3339).")]
ToQuery = Annotated[dt.datetime | None, Query(alias="to", description="End, excluded.")]
QQuery = Annotated[str, Query(max_length=2000, description="A query in the log query language.")]


class UnsupportedMediaType(AgoraError):
    """The body's content type is not one ingest understands."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


@router.post(
    INGEST_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResult,
    summary="Ingest log lines: NDJSON, or text/plain with format=nginx|json",
)
async def ingest(
    request: Request,
    services: ServicesDep,
    format: Literal["nginx", "json"] | None = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=200)] = None,
    host: Annotated[str | None, Query(max_length=200)] = None,
) -> IngestResult:
    """Parse and buffer lines; each bad line is refused with its reason, the rest go on."""
    identity = await _ingest_identity(request, services)
    fmt = _format(request.headers.get("content-type", ""), format)
    limit = rate_limit("log_ingest", services.settings.rate_limit_log_ingest)

    async def spend(lines: int) -> None:
        await services.rate_limiter.enforce(limit, identity, cost=max(1, min(lines, limit.quota)))

    return await service.ingest(
        services.redis,
        await request.body(),
        fmt,
        services.settings,
        service=service_name,
        host=host,
        spend=spend,
    )


def _format(content_type: str, asked: Literal["nginx", "json"] | None) -> Format:
    media = content_type.split(";", 1)[0].strip().lower()
    if asked is not None:
        return asked
    if media in ("application/x-ndjson", "application/ndjson", "application/jsonl", ""):
        return "ndjson"
    raise UnsupportedMediaType(
        "Send application/x-ndjson, or text/plain with ?format=nginx or ?format=json."
    )


async def _ingest_identity(request: Request, services: ServicesDep) -> str:
    """Who ships: an ingest key (by its digest) or a staff member (by id); 401/403 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "Send an ingest key or a staff access token as a bearer token.",
            code="not_authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if service.looks_like_key(token):
        async with services.database.sessionmaker() as session:
            if not await service.is_valid_key(session, token):
                raise Unauthorized("Unknown ingest key.", code="invalid_ingest_key")
        return "key:" + service.key_identity(token)
    principal = decode_access_token(services.settings, token)
    ensure_staff(principal.role)
    return f"user:{principal.user_id}"


@router.post(
    "/logs/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedKey,
    summary="Create an ingest key (staff); the key is shown once",
)
async def create_key(
    body: KeyCreate, response: Response, _: StaffPrincipal, session: SessionDep
) -> CreatedKey:
    """Create a key for a shipper; only its digest is kept."""
    created = await service.create_key(session, body.name)
    response.headers["Location"] = f"/api/v1/logs/keys/{created.id}"
    return created


@router.delete(
    "/logs/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an ingest key (staff)",
)
async def delete_key(key_id: uuid.UUID, _: StaffPrincipal, session: SessionDep) -> None:
    """Revoke a key: its next request is refused."""
    await service.delete_key(session, key_id)


@router.get("/logs/search", response_model=SearchPage, summary="Search log lines (staff)")
async def search(
    _: StaffPrincipal,
    session: SessionDep,
    q: QQuery = "",
    start: FromQuery = None,
    end: ToQuery = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_SEARCH_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> SearchPage:
    """Matching lines, newest first; ``next_cursor`` pages to older ones."""
    return await service.search(session, q, start=start, end=end, limit=limit, cursor=cursor)


@router.get("/logs/stats", response_model=Stats, summary="Time series of counts and latency")
async def stats(
    _: StaffPrincipal,
    session: SessionDep,
    q: QQuery = "",
    start: FromQuery = None,
    end: ToQuery = None,
    step: Annotated[int, Query(ge=1, le=86400)] = 60,
    by: Annotated[str | None, Query(description="route, service, status_class, ...")] = None,
) -> Stats:
    """Count, error rate and p50/p95/p99 per bucket, per group."""
    return await service.stats(session, q, start=start, end=end, step=step, by=by or None)


@router.get("/logs/top", response_model=list[TopValue], summary="Most frequent values of a field")
async def top(
    _: StaffPrincipal,
    session: SessionDep,
    field: Annotated[str, Query(max_length=200)] = "path",
    q: QQuery = "",
    start: FromQuery = None,
    end: ToQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[TopValue]:
    """The values of ``field`` that most matching lines carry, with their counts."""
    return await service.top(session, field, q, start=start, end=end, limit=limit)
