"""The error hierarchy and its rendering as RFC 9457 ``application/problem+json``.

Business code raises an ``AgoraError``; the handlers here turn it (and validation errors, and
anything unexpected) into a problem document with a stable ``code`` clients can branch on.
Redis that cannot be reached where a request needs it (a flash-sale purchase, a login budget),
and a database connection pool that stays busy past its timeout, are a 503
``temporarily_unavailable`` with ``Retry-After``, not a 500: the request may succeed as is
once Redis is back or a connection is free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from agora.core.redis import UNREACHABLE
from agora.core.serialization import dumps

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger(__name__)


class AgoraError(Exception):
    """Something the caller can be told about, with an HTTP status and a stable code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance_code = code or self.code
        self.headers = dict(headers or {})
        self.extensions = extensions


class Unauthorized(AgoraError):
    """The request carries no valid credentials."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(AgoraError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AgoraError):
    """The resource does not exist, or the caller may not see it."""

    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AgoraError):
    """The request clashes with the current state (sold out, wrong state, duplicate)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class ValidationFailed(AgoraError):
    """The input is well-formed but breaks a business rule."""

    status = 422
    code = "validation_failed"
    title = "Validation failed"


class PayloadTooLarge(AgoraError):
    """The request body is larger than the configured limit."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class RateLimited(AgoraError):
    """The caller has spent its request budget; ``Retry-After`` says when to come back."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(AgoraError):
    """A dependency (database, Redis, provider) cannot be reached right now."""

    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": f"https://agora.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return Response(dumps(body), status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in errors
    ]


def error_response(error: AgoraError, instance: str | None = None) -> Response:
    """The problem document of an error, for callers that answer it rather than raise it.

    A middleware cannot raise into the app's handlers, and an endpoint whose refusal must still
    commit its side effects (revoking a stolen session) returns the error instead of raising it.
    """
    return problem_response(
        error.status,
        error.title,
        error.detail,
        error.instance_code,
        instance=instance,
        headers=error.headers,
        **error.extensions,
    )


async def _agora_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgoraError)
    return error_response(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422,
        "Invalid request",
        "The request does not match the expected shape.",
        "invalid_request",
        instance=request.url.path,
        errors=_field_errors(exc.errors()),
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    return problem_response(
        exc.status_code,
        status.phrase,
        str(exc.detail) if exc.detail else status.description,
        status.phrase.lower().replace(" ", "_").replace("-", "_"),
        instance=request.url.path,
        headers=exc.headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(
        500,
        "Internal server error",
        "Something went wrong on our side; it has been logged.",
        "internal_error",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI, *, retry_after: int) -> None:
    """Render every error of the app as problem+json; Redis outages and a busy connection pool
    ask clients to come back after ``retry_after`` seconds."""

    def temporarily_unavailable(detail: str, request: Request) -> Response:
        unavailable = ServiceUnavailable(
            detail, code="temporarily_unavailable", headers={"Retry-After": str(retry_after)}
        )
        return error_response(unavailable, request.url.path)

    async def redis_unreachable(request: Request, exc: Exception) -> Response:
        log.warning("redis_unreachable", path=request.url.path, error=str(exc))
        return temporarily_unavailable(
            "A service this request needs is unreachable; retry shortly.", request
        )

    async def database_busy(request: Request, exc: Exception) -> Response:
        log.warning("database_pool_exhausted", path=request.url.path, error=str(exc))
        return temporarily_unavailable("The database is busy; retry shortly.", request)

    app.add_exception_handler(AgoraError, _agora_error)
    for unreachable in UNREACHABLE:
        app.add_exception_handler(unreachable, redis_unreachable)
    # Every pooled connection stayed in use for the pool's timeout (AGORA_DATABASE_POOL_TIMEOUT).
    app.add_exception_handler(PoolTimeout, database_busy)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
