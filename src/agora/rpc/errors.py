"""Agora's errors as gRPC status codes, and request fields parsed the way the HTTP API does.

The status follows the HTTP status of the ``AgoraError`` (404 → NOT_FOUND, 409 →
FAILED_PRECONDITION: out of stock, below committed stock …), and the stable Agora ``code``
travels in the trailing metadata entry ``agora-code`` for clients that branch on it.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import grpc

from agora.core.errors import AgoraError, ValidationFailed

CODE_METADATA_KEY = "agora-code"
_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_of(error: AgoraError) -> grpc.StatusCode:
    """The gRPC status code of an Agora error."""
    return _BY_HTTP_STATUS.get(error.status, grpc.StatusCode.UNKNOWN)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: AgoraError) -> NoReturn:
    """End the call with the status of ``error``, its detail and its Agora code."""
    context.set_trailing_metadata(((CODE_METADATA_KEY, error.instance_code),))
    await context.abort(status_of(error), error.detail)
    raise AssertionError("abort() raises")  # pragma: no cover - for the type checker


def parse_id(value: str, field: str) -> uuid.UUID:
    """A UUID field of a request; INVALID_ARGUMENT (``invalid_id``) when it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed(f"{field} is not a UUID.", code="invalid_id", field=field) from exc


def optional_id(value: str, field: str) -> uuid.UUID | None:
    """An optional UUID field (empty means absent)."""
    return parse_id(value, field) if value else None
