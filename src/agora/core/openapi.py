"""The OpenAPI document describes the errors the API sends: RFC 9457 problems.

FastAPI documents only a 422 in its own ``application/json`` validation shape, which is not what
the error handlers send, so a generated client would mis-parse every error. ``document_problems``
rewrites the document once, when it is first asked for: each operation lists the error statuses
it can answer, each as a ``Problem`` under ``application/problem+json``:

- 413 and 503 everywhere (the body limit and an unreachable dependency);
- 429 under the metered prefix, except the unmetered paths;
- 422 where the operation takes parameters or a body, and 400 for a body that cannot be parsed;
- 401 and 403 where it takes credentials;
- 404 where it names a resource in its path, and 404 and 409 on every write.

An error status a route declares is documented the same way, with the route's description,
unless the route gives it a ``content`` of its own (a provider callback's refusal).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from agora.core.errors import PROBLEM_MEDIA_TYPE

_REF = "#/components/schemas/{model}"
_WRITES = frozenset({"post", "put", "patch", "delete"})
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_RATE_LIMIT_HEADERS = {
    name: {"description": description, "schema": {"type": "string"}}
    for name, description in (
        ("Retry-After", "Seconds until the budget allows another request"),
        ("RateLimit-Policy", "The budget: requests per window (IETF draft)"),
        ("RateLimit", "What is left of the budget (IETF draft)"),
    )
}


class FieldError(BaseModel):
    """One field of the request that was refused, and why."""

    loc: list[str] = Field(description="Where: `body`, `query`, `path` or `header`, then names")
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem: every 4xx and 5xx answer of the API has this shape.

    Branch on ``code``, which is stable; ``title`` and ``detail`` are for people. Some problems
    carry more members (``retry_after``, ``checks`` ...), named in the docs of their code.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, e.g. `sold_out`")
    instance: str | None = Field(None, description="The path of the request")
    errors: list[FieldError] | None = Field(None, description="Each refused field (422)")


def document_problems(
    app: FastAPI, *, metered_prefix: str, unmetered_prefixes: tuple[str, ...] = ()
) -> None:
    """Make ``app.openapi()`` document every error response as a ``Problem``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _add_problem_schemas(schema)
            for path, operations in schema.get("paths", {}).items():
                metered = path.startswith(metered_prefix) and not path.startswith(
                    unmetered_prefixes
                )
                for method, operation in operations.items():
                    _document_operation(operation, method, metered=metered)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _add_problem_schemas(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    problem = Problem.model_json_schema(ref_template=_REF)
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem


def _document_operation(operation: dict[str, Any], method: str, *, metered: bool) -> None:
    parameters = operation.get("parameters", [])
    responses = operation.setdefault("responses", {})
    statuses = {413, 503} | {
        int(status) for status in responses if status.isdigit() and int(status) >= 400
    }
    if metered:
        statuses.add(429)
    if "requestBody" in operation:
        statuses |= {400, 422}
    if parameters:
        statuses.add(422)
    if operation.get("security"):
        statuses |= {401, 403}
    if any(parameter["in"] == "path" for parameter in parameters):
        statuses.add(404)
    if method in _WRITES:
        statuses |= {404, 409}
    for status in sorted(statuses):
        declared = responses.get(str(status), {})
        if status == 422:
            declared = {"description": "Invalid input: `errors` names each refused field"}
        elif "content" in declared:
            continue
        responses[str(status)] = _problem_response(status, declared.get("description"))


def _problem_response(status: int, description: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or HTTPStatus(status).phrase,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }
    if status == 429:
        response["headers"] = _RATE_LIMIT_HEADERS
    return response
