"""Bearer tokens in gRPC metadata: a staff access token, or a service key.

Warehouse and ERP systems are services, not people: they call with one of the keys of
``AGORA_SERVICE_KEYS``; staff tools may use the same access tokens as the HTTP API. Health
checks and reflection stay open, like ``/healthz``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from agora.core.errors import AgoraError, Unauthorized
from agora.core.security import decode_access_token, ensure_staff
from agora.rpc.errors import CODE_METADATA_KEY, status_of
from agora.settings import Settings

_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_BEARER = "bearer "


def authorize(settings: Settings, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
    """Accept a call whose ``authorization`` is a service key or a staff access token;
    ``Unauthorized`` (no or bad token) or ``Forbidden`` (not staff) otherwise."""
    header = next((str(value) for key, value in metadata if key == "authorization"), "")
    if not header.lower().startswith(_BEARER):
        raise Unauthorized("A bearer token is required.", code="not_authenticated")
    token = header[len(_BEARER) :].strip()
    if any(hmac.compare_digest(token, key) for key in settings.service_key_list):
        return
    ensure_staff(decode_access_token(settings, token).role)


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call but health and reflection without valid credentials."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, or one that ends the call with the auth error's status."""
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_SERVICES):
            return handler
        try:
            authorize(self._settings, tuple(handler_call_details.invocation_metadata or ()))
        except AgoraError as error:
            return _refusal(handler, error)
        return handler


def _refusal(
    handler: grpc.RpcMethodHandler[Any, Any], error: AgoraError
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that only refuses the call."""

    async def refuse(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        context.set_trailing_metadata(((CODE_METADATA_KEY, error.instance_code),))
        await context.abort(status_of(error), error.detail)

    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
