"""Every operation, fuzzed from the OpenAPI document against a real server, answers no 5xx, and
answers only what the document says: its statuses, media types and bodies (Problem for errors)."""

from __future__ import annotations

from collections.abc import Iterator
from math import inf
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from agora.app import create_app
from agora.core.security import Role
from agora.core.validation import MAX_SAFE_INTEGER
from agora.settings import Settings
from tests.factories import Account, create_user
from tests.support import ApiProcess

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_UNLIMITED = "1000000/minute"


@pytest.fixture(scope="module")
def fuzzed_server(service_env: dict[str, str]) -> Iterator[ApiProcess]:
    """One real API server for the whole module, with budgets the fuzzer cannot spend."""
    server = ApiProcess(
        env={
            **service_env,
            "AGORA_RATE_LIMIT_DEFAULT": _UNLIMITED,
            "AGORA_RATE_LIMIT_LOGIN": _UNLIMITED,
            "AGORA_RATE_LIMIT_REGISTER": _UNLIMITED,
        }
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def staff(database: Any, settings: Settings) -> Account:
    """A staff account, so that every operation gets past authorisation."""
    return await create_user(database, settings, Role.STAFF)


# The document is the app's own: the same one the fuzzed server serves at /openapi.json.
DOCUMENT = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.mark.fuzz
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_documented(
    case: Any, fuzzed_server: ApiProcess, staff: Account
) -> None:
    case.call_and_validate(base_url=fuzzed_server.base_url, headers=staff.headers, checks=CHECKS)


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every sub-schema of ``node`` with where it sits."""
    yield where, node
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in children:
        yield from _walk(value, f"{where}/{key}")


def _input_schemas(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Parameters and request bodies of every operation, and the components they refer to."""
    components = document["components"]["schemas"]
    pending = [
        (f"{method} {path}", {"parameters": op.get("parameters"), "body": op.get("requestBody")})
        for path, operations in document["paths"].items()
        for method, op in operations.items()
    ]
    seen: set[str] = set()
    while pending:
        origin, node = pending.pop()
        yield origin, node
        for _, child in _walk(node, origin):
            ref = child.get("$ref", "") if isinstance(child, dict) else ""
            name = ref.removeprefix("#/components/schemas/")
            if ref and name not in seen:
                seen.add(name)
                pending.append((name, components[name]))


def _lowest(integer: dict[str, Any]) -> float:
    return max(integer.get("minimum", -inf), integer.get("exclusiveMinimum", -inf))


def _highest(integer: dict[str, Any]) -> float:
    return min(integer.get("maximum", inf), integer.get("exclusiveMaximum", inf))


def test_every_integer_input_is_bounded_to_what_clients_and_postgresql_hold() -> None:
    unbounded = [
        where
        for origin, node in _input_schemas(DOCUMENT)
        for where, child in _walk(node, origin)
        if isinstance(child, dict)
        and child.get("type") == "integer"
        and not (_lowest(child) >= -MAX_SAFE_INTEGER and _highest(child) <= MAX_SAFE_INTEGER)
    ]
    assert unbounded == []


def test_every_error_response_is_documented_as_a_problem() -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]
    assert set(DOCUMENT["components"]["schemas"]["Problem"]["properties"]) == {
        "type", "title", "status", "detail", "code", "instance", "errors"
    }  # fmt: skip
    provider_callback = "/api/v1/payments/webhooks/{provider}"
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"413", "503"} <= set(responses), (method, path)
            for status, response in responses.items():
                if int(status) < 400 or (path == provider_callback and status == "400"):
                    continue
                assert response["content"] == {"application/problem+json": {"schema": problem}}
    orders = DOCUMENT["paths"]["/api/v1/orders"]
    assert {"401", "403", "422", "429"} <= set(orders["get"]["responses"])
    assert {"400", "404", "409"} <= set(orders["post"]["responses"])
