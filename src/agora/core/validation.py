"""Input PostgreSQL cannot store is refused where requests are parsed, before it reaches SQL.

PostgreSQL refuses a NUL character in text and an integer past 64 bits; a request carrying one
would otherwise fail deep inside a query and answer 500. Integers are bounded by the types below
(or tighter), which every schema and parameter uses; a test walks the OpenAPI document to keep
it so. NUL is
refused once for every operation by ``refuse_unstorable_input``, a dependency the app puts in
front of all its routes: it looks at the path and query parameters, form fields and JSON
strings (keys too) and answers 422 ``invalid_request`` naming each field that holds one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from pydantic import Field
from starlette.requests import HTTPConnection, Request

from agora.core.serialization import loads

# The largest integer every JSON client holds exactly (JavaScript's Number.MAX_SAFE_INTEGER) and
# that survives the OpenAPI document's float bounds: well within PostgreSQL's bigint.
MAX_SAFE_INTEGER = 2**53 - 1
BigInt = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
NonNegativeBigInt = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
PositiveBigInt = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]

NUL = "\x00"
ESCAPED_NUL = b"\\u0000"  # how a NUL stands in a JSON string
_URLENCODED = "application/x-www-form-urlencoded"
_URLENCODED_NULS = (b"%00", b"\x00")  # how a NUL can stand in a url-encoded form
_FORM_TYPES = (_URLENCODED, "multipart/form-data")
_NUL_MESSAGE = "Value must not contain NUL characters"


async def refuse_unstorable_input(connection: HTTPConnection) -> None:
    """422 naming every parameter, form field or JSON string that carries a NUL character."""
    locations: list[tuple[str | int, ...]] = [
        ("path", name) for name, value in connection.path_params.items() if _has_nul(value)
    ]
    locations += [
        ("query", name) for name, value in connection.query_params.multi_items()
        if NUL in name or NUL in value
    ]  # fmt: skip
    if isinstance(connection, Request):
        locations += await _body_locations(connection)
    if not locations:
        return
    errors = [{"type": "string_nul", "loc": loc, "msg": _NUL_MESSAGE} for loc in locations]
    if connection.scope["type"] == "websocket":
        raise WebSocketRequestValidationError(errors)
    raise RequestValidationError(errors)


async def _body_locations(request: Request) -> list[tuple[str | int, ...]]:
    """Where the body holds a NUL; a JSON body or form was already read (and kept) by FastAPI."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        # Keep the raw body first, for a route that reads it after us (a provider callback
        # verifies its signature on it); when FastAPI parsed the form already, the stream is
        # spent and its parsed form is kept instead.
        with contextlib.suppress(RuntimeError):
            body = await request.body()
            if content_type.startswith(_URLENCODED) and not any(
                nul in body for nul in _URLENCODED_NULS
            ):
                return []  # the cheap test, as for JSON: no form parsed for nothing
        form = await request.form()
        return [("body", name) for name, value in form.multi_items() if _has_nul(value)]
    if "json" not in content_type:
        return []
    body = await request.body()
    if ESCAPED_NUL not in body:  # the cheap test: a JSON string can only hold NUL escaped
        return []
    try:
        document = loads(body)
    except ValueError:
        return []
    return list(_json_locations(document, ("body",)))


def _json_locations(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str):
        if NUL in value:
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield (*loc, key)
            yield from _json_locations(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_locations(item, (*loc, index))


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and NUL in value
