"""The yardstick for cached reads: a bare Starlette app answering each path with the response
recorded from Agora, body and headers (security headers and request id included), so that both
servers send the same bytes and only what produces them differs.

The recording is a JSON file named by ``BENCH_BYTES_FILE``: ``{path-with-query: [body,
[[header, value], ...]]}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app() -> Starlette:
    """The bare app (an ASGI factory, like Agora's)."""
    recorded = json.loads(Path(os.environ["BENCH_BYTES_FILE"]).read_text())
    answers = {path: (body.encode(), dict(headers)) for path, (body, headers) in recorded.items()}

    async def answer(request: Request) -> Response:
        query = request.url.query
        body, headers = answers[request.url.path + ("?" + query if query else "")]
        return Response(body, headers=headers)

    return Starlette(routes=[Route("/{path:path}", answer)])
