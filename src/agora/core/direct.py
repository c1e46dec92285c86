"""Hot JSON writes answered before routing, by the function their route calls too.

Through FastAPI, most of the CPU of a small write goes to the framework around the work: the
middleware below the app's own, the router (each route a regex tried in turn), the dependency
graph (token, body, idempotency key, the app-wide NUL check, services) and the request
handler. ``DirectJsonMiddleware`` (pure ASGI, as the edge cache is for cached reads,
``core/edge.py``) answers a well-formed request itself and hands everything else, untouched,
to the route:

- well-formed means the route's method and path (each ``{name}`` in it a canonical UUID), no
  query string, one ``Content-Type: application/json``, a declared length of at most
  ``MAX_DIRECT_BODY`` bytes, a body the route's model accepts with no escaped NUL in it (or no
  body at all, for a route that takes none), one
  ``Authorization: Bearer`` token that verifies, and at most one ``Idempotency-Key`` of the
  allowed shape (and none of the headers in ``passing_headers``, left to the route);
- anything else (a missing or bad token, a body that fails validation, another content type, a
  chunked body) goes to the route with the body it was sent, so its answers (401, 422 as RFC
  9457 problems) come from the one place that defines them, and OpenAPI documents the route;
- the answer is built by the function the route calls too; a refusal raised on the way is
  rendered by the app's own exception handler for it (``core/errors.py``), and what has none
  reaches the server-error handler as from the route.

The layers above it still run (request id, access log and metrics, security and CORS headers,
the body limit, and the default budget for a handler placed behind it), and it puts on the
scope what they read: the route's template and the principal.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agora.core.dependencies import AppServices
from agora.core.errors import Unauthorized
from agora.core.idempotency import IDEMPOTENCY_KEY_PATTERN, IdempotentRequest, fingerprint
from agora.core.observability import RouteLabel
from agora.core.security import Principal, decode_access_token
from agora.core.validation import ESCAPED_NUL

MAX_DIRECT_BODY = 4096
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PARAMETER = re.compile(r"\\\{(\w+)\\\}")  # a ``{name}`` of a template, once escaped
_HEADERS = frozenset({b"authorization", b"content-type", b"content-length", b"idempotency-key"})
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class DirectCall:
    """A well-formed request, as its route's function takes it."""

    services: AppServices
    connection: HTTPConnection
    path_params: Mapping[str, uuid.UUID]
    principal: Principal
    body: Any  # an instance of the route's model
    idempotency: IdempotentRequest


DirectAnswer = Callable[[DirectCall], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Headers:
    """What a well-formed request carries, read from its headers."""

    token: str
    idempotency_key: str | None


class DirectJsonMiddleware:
    """Answers well-formed ``POST`` requests to ``path`` (a route's template) with ``answer``,
    their body validated by ``model`` (a request without a body when ``model`` is None); every
    other request passes through untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        model: type[BaseModel] | None,
        answer: DirectAnswer,
        passing_headers: frozenset[bytes] = frozenset(),
    ) -> None:
        self.app = app
        self.route = RouteLabel(path)
        self.path = re.compile(_PARAMETER.sub(rf"(?P<\1>{_UUID})", re.escape(path)))
        self.model = model
        self.answer = answer
        self.passing_headers = passing_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self.path.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        headers = _well_formed(scope, self.passing_headers, self.model) if match else None
        if match is None or headers is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body: bytes | None = b""
        if self.model is not None:
            messages, body = await read_body(receive)
        decided = self._decide(scope, body, headers.token) if body is not None else None
        if body is None or decided is None:
            await self.app(scope, replaying(messages, receive), send)
            return
        principal, request = decided
        scope["route"] = self.route
        scope.setdefault("state", {})["principal"] = principal
        key = headers.idempotency_key
        call = DirectCall(
            services=scope["app"].state.services,
            connection=HTTPConnection(scope),
            path_params={name: uuid.UUID(value) for name, value in match.groupdict().items()},
            principal=principal,
            body=request,
            idempotency=IdempotentRequest(
                key, fingerprint("POST", scope["path"], body) if key else ""
            ),
        )
        try:
            response = await self.answer(call)
        except Exception as exc:
            response = await handled_by_app(scope, receive, exc)
        await response(scope, receive, send)

    def _decide(self, scope: Scope, body: bytes, token: str) -> tuple[Principal, Any] | None:
        """The caller and the validated body, or None when the route must answer (a bad token,
        a body the model refuses or that holds an escaped NUL)."""
        if ESCAPED_NUL in body:
            return None
        try:
            request = None if self.model is None else self.model.model_validate_json(body)
            principal = decode_access_token(scope["app"].state.services.settings, token)
        except (ValidationError, Unauthorized):
            return None
        return principal, request


def _well_formed(
    scope: Scope, passing: frozenset[bytes], model: type[BaseModel] | None
) -> _Headers | None:
    """The token and key of a request whose headers qualify, else None (passed on)."""
    if scope["query_string"] or scope.get("root_path"):
        return None
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
            if name in found:
                return None
            found[name] = value
        elif name == b"transfer-encoding" or name in passing:
            return None
    length = found.get(b"content-length", b"0")
    if not length.isdigit():
        return None
    if model is None:
        if int(length) != 0:
            return None
    else:
        content_type = found.get(b"content-type", b"").partition(b";")[0].strip().lower()
        if content_type != b"application/json" or not 0 < int(length) <= MAX_DIRECT_BODY:
            return None
    scheme, _, token = found.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    key = found.get(b"idempotency-key")
    if key is None:
        return _Headers(token, None)
    idempotency_key = key.decode("latin-1")
    return _Headers(token, idempotency_key) if _KEY.fullmatch(idempotency_key) else None


async def read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages received and the whole body; None for the body when the client left."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` with the messages already read given back first, in order."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def handled_by_app(scope: Scope, receive: Receive, exc: Exception) -> Response:
    """The answer the app's own handler gives ``exc`` (as on the route); re-raised when only the
    server-error handler takes it."""
    handlers: Mapping[Any, Any] = scope["app"].exception_handlers
    for kind in type(exc).__mro__:
        if kind is Exception:
            break
        if kind in handlers:
            response: Response = await handlers[kind](Request(scope, receive), exc)
            return response
    raise exc
