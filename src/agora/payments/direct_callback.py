"""Provider callbacks answered before routing, by the function their route calls too.

A callback is a small signed body that a provider sends in bursts (a storm of redeliveries
after an outage, duplicates included), and almost all of its cost through FastAPI was the
framework around one signature check and a few statements: the router, the dependency graph
(session, Redis, settings, the provider's name, the app-wide NUL check) and the request
handler. ``DirectCallbackMiddleware`` (pure ASGI, as ``core/direct.py`` is for the hot JSON
writes) answers a callback it can take whole:

- ``POST`` to the webhook path of an enabled provider, no query string, one ``Content-Type``
  that is JSON or a url-encoded form (what Stripe, WeChat Pay and Alipay send), and a body with
  no NUL in any of the forms a JSON string or a form can carry it;
- the same ``handle_callback`` as the route, in a unit of work that commits before the answer,
  and the provider's own acknowledgement or refusal.

Anything else (another provider name, a disabled provider, another content type, a NUL) goes
to the route with the body it was sent, so its answers (404, 422 as RFC 9457 problems) come
from the one place that defines them, and OpenAPI documents the route. An error raised on the
way is rendered by the app's own handler for it, as from the route.
"""

from __future__ import annotations

from typing import get_args

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agora.core.dependencies import AppServices
from agora.core.direct import handled_by_app, read_body, replaying
from agora.core.observability import RouteLabel
from agora.core.validation import ESCAPED_NUL
from agora.payments import service
from agora.payments.schemas import WebhookProvider
from agora.settings import Settings

_PROVIDERS = frozenset(get_args(WebhookProvider))
_CONTENT_TYPES = (b"application/json", b"application/x-www-form-urlencoded")
_NULS = (ESCAPED_NUL, b"%00", b"\x00")  # a NUL escaped in JSON, in a form, or raw
_ACKNOWLEDGED = frozenset({service.CallbackResult.ACCEPTED, service.CallbackResult.DUPLICATE})


async def answer_callback(
    services: AppServices, provider: str, body: bytes, headers: Headers
) -> Response:
    """Verify and apply one callback, committed before the provider's answer is returned."""
    gateway = service.provider_named(services.settings, provider)
    async with services.database.unit_of_work() as session:
        result = await service.handle_callback(session, services.redis, gateway, body, headers)
    answer = gateway.acknowledgement() if result in _ACKNOWLEDGED else gateway.refusal(result.value)
    return Response(answer.body, answer.status_code, media_type=answer.media_type)


class DirectCallbackMiddleware:
    """Answers callbacks under ``prefix`` (the webhook path up to ``{provider}``) for the
    ``enabled`` providers that it can take whole; every other request passes through
    untouched."""

    def __init__(self, app: ASGIApp, *, prefix: str, enabled: frozenset[str]) -> None:
        self.app = app
        self.prefix = prefix
        self.providers = _PROVIDERS & enabled
        self.route = RouteLabel(prefix + "{provider}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = self._provider(scope)
        if provider is None:
            await self.app(scope, receive, send)
            return
        messages, body = await read_body(receive)
        if body is None or any(nul in body for nul in _NULS):
            await self.app(scope, replaying(messages, receive), send)
            return
        scope["route"] = self.route
        services: AppServices = scope["app"].state.services
        try:
            response = await answer_callback(services, provider, body, Headers(scope=scope))
        except Exception as exc:
            response = await handled_by_app(scope, receive, exc)
        await response(scope, receive, send)

    def _provider(self, scope: Scope) -> str | None:
        """The enabled provider a well-formed callback is for, else None (passed on)."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if not path.startswith(self.prefix) or scope["query_string"] or scope.get("root_path"):
            return None
        provider = path[len(self.prefix) :]
        if provider not in self.providers:
            return None
        content_types = [value for name, value in scope["headers"] if name == b"content-type"]
        if len(content_types) != 1:
            return None
        media_type = content_types[0].partition(b";")[0].strip().lower()
        return provider if media_type in _CONTENT_TYPES else None


def direct_callbacks(prefix: str, settings: Settings) -> Middleware:
    """The middleware answering callbacks under ``prefix`` of the providers ``settings``
    enable, without the router."""
    return Middleware(
        DirectCallbackMiddleware, prefix=prefix, enabled=settings.enabled_payment_providers
    )
