"""``/docs``: Swagger UI served from an installed package, so it works with no internet.

FastAPI's own page loads Swagger UI from a public CDN: where that CDN is blocked, slow or out of
reach the page stays blank. Here the assets come from the ``swagger-ui-py`` wheel and the page
runs no inline script (its set-up is ``/docs/init.js``), so it keeps a strict Content Security
Policy: everything from this origin, nothing from anywhere else. The OAuth2 password flow of
the "Authorize" button posts to the token endpoint of this origin.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from agora.core.serialization import dumps


def _package_dir(name: str) -> Path:
    """Where an installed package lies, found without importing it: the assets are files, and
    importing ``swagger_ui`` would load its template engine (3 MB) into every API process."""
    spec = find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    return Path(spec.origin).parent


ASSETS_DIR = _package_dir("swagger_ui") / "static"
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{prefix}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{prefix}/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{prefix}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{prefix}/docs/init.js"></script>
</body>
</html>
"""
_INIT = """window.ui = SwaggerUIBundle({{
  url: {openapi_url},
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
}});
"""


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets; build the app with ``docs_url=None, redoc_url=None``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def docs(request: Request) -> HTMLResponse:
        page = _PAGE.format(title=f"{app.title} API", prefix=_root_path(request))
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY})

    @router.get("/docs/init.js")
    def init_script(request: Request) -> Response:
        openapi_url = dumps(_root_path(request) + (app.openapi_url or "")).decode()
        return Response(
            _INIT.format(openapi_url=openapi_url), media_type="text/javascript; charset=utf-8"
        )

    app.include_router(router)
    app.mount("/docs/assets", StaticFiles(directory=ASSETS_DIR), name="docs-assets")


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
