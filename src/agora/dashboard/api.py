"""The dashboard's routes: the page, its static modules, the chart library and the snapshot feed.

Thin like every ``api.py``: the page is rendered from a template, figures come from
``snapshot.py``; nothing here queries the database.
"""

from __future__ import annotations

from typing import Annotated

import jinja2
from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

from agora.core.security import accept_websocket, websocket_token
from agora.dashboard import assets
from agora.dashboard.feed import POLICY_VIOLATION, Feed
from agora.dashboard.i18n import LANGUAGE_COOKIE, LANGUAGES, MESSAGES, choose_language
from agora.dashboard.ranges import RANGES
from agora.dashboard.security import PAGE_CONTENT_SECURITY_POLICY
from agora.dashboard.snapshot import SnapshotBoard

STATIC_PATH = "/dashboard/static"
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("agora.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
async def page(request: Request, lang: str | None = None) -> HTMLResponse:
    """The page, its labels in the language asked for (``?lang=``, cookie, Accept-Language)."""
    language = choose_language(
        lang, request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )
    html = _templates.get_template("dashboard.html").render(
        lang=language,
        languages=LANGUAGES,
        t=MESSAGES[language],
        messages=MESSAGES[language],
        ranges=list(RANGES),
        static=STATIC_PATH,
        chart_library=f"/dashboard/vendor/plotly-{assets.chart_library_version()}.min.js",
    )
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = PAGE_CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = assets.PAGE_CACHE_CONTROL
    response.headers["Vary"] = "Accept-Language, Cookie"
    if lang in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, samesite="strict")
    return response


@router.get("/dashboard/vendor/plotly-{version}.min.js")
async def chart_library(version: str) -> FileResponse:
    """The chart library from the installed plotly package (any version path serves the
    installed one; the versioned URL only lets browsers cache it for good)."""
    return FileResponse(
        assets.chart_library_path(),
        media_type="text/javascript",
        headers={"Cache-Control": assets.CHART_LIBRARY_CACHE_CONTROL},
    )


@router.websocket("/ws/dashboard")
async def feed(
    websocket: WebSocket,
    range: Annotated[str, Query(max_length=8)] = "15m",
) -> None:
    """Snapshots for staff, newest wins; anyone else is refused before the handshake."""
    board: SnapshotBoard = websocket.app.state.dashboard_board
    session = Feed(websocket, board, websocket_token(websocket))
    if not session.is_authorised():
        await websocket.close(code=POLICY_VIOLATION)
        return
    session.time_range = RANGES.get(range, session.time_range)
    await accept_websocket(websocket)
    await session.serve()


static_files = StaticFiles(packages=[assets.STATIC_PACKAGE])
