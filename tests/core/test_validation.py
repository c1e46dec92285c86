"""Input PostgreSQL cannot store (NUL characters, integers past 64 bits) is a 422 naming the field,
never a 500, wherever it comes in: path, query, JSON body or form."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agora.core.security import Role
from agora.core.validation import MAX_SAFE_INTEGER
from agora.settings import Settings
from tests.factories import create_user

pytestmark = pytest.mark.usefixtures("app")
INT64_MAX = 2**63 - 1

_SHIPPING_METHOD = {
    "code": "post",
    "name": "Post",
    "kind": "flat",
    "currency": "EUR",
    "base_amount": 500,
}


def _refused_fields(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_request"
    return [error["loc"] for error in problem["errors"]]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/products/%00'", ["path", "id_or_slug"]),
        ("/api/v1/categories/%00", ["path", "slug"]),
        ("/api/v1/products?attr.x=%00", ["query", "attr.x"]),
        ("/api/v1/products?q=a%00b", ["query", "q"]),
        ("/api/v1/products?attr.%00=x", ["query", "attr.\x00"]),
    ],
)
async def test_nul_in_a_path_or_query_parameter_is_refused(
    client: httpx.AsyncClient, url: str, field: list[str]
) -> None:
    assert _refused_fields(await client.get(url)) == [field]


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/products", {"name": "a\x00b"}, ["body", "name"]),
        (
            "/api/v1/products",
            {"name": "Shirt", "variants": [{"sku": "S-1", "price": {"amount": 1,
             "currency": "EUR"}, "attributes": {"colour": "red\x00"}}]},
            ["body", "variants", "0", "attributes", "colour"],
        ),
        ("/api/v1/shipping-methods", {**_SHIPPING_METHOD, "name": "\x00"}, ["body", "name"]),
        ("/api/v1/shipping-methods", {**_SHIPPING_METHOD, "code": "p\x00"}, ["body", "code"]),
    ],
)  # fmt: skip
async def test_nul_in_a_json_string_is_refused(
    client: httpx.AsyncClient,
    database: Any,
    settings: Settings,
    url: str,
    body: dict[str, Any],
    field: list[str],
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    response = await client.post(url, json=body, headers=staff.headers)
    assert _refused_fields(response) == [field]


async def test_an_escaped_backslash_is_not_mistaken_for_nul(
    client: httpx.AsyncClient, database: Any, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    response = await client.post(
        "/api/v1/products", content=b'{"name": "a\\\\u0000b"}', headers={
            **staff.headers, "Content-Type": "application/json"
        },
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "a\\u0000b"


async def test_nul_in_a_form_field_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/token", data={"username": "a\x00@example.com", "password": "x"}
    )
    assert _refused_fields(response) == [["body", "username"]]


@pytest.mark.parametrize("number", ["50061158372667359232", str(INT64_MAX + 1)])
async def test_an_integer_past_64_bits_is_refused(
    client: httpx.AsyncClient, database: Any, settings: Settings, number: str
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    response = await client.get(f"/api/v1/orders?number={number}", headers=staff.headers)
    assert _refused_fields(response) == [["query", "number"]]


async def test_the_largest_safe_integer_is_a_plain_miss(
    client: httpx.AsyncClient, database: Any, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    response = await client.get(f"/api/v1/orders?number={MAX_SAFE_INTEGER}", headers=staff.headers)
    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_price_filters_past_64_bits_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/products?min_price={INT64_MAX + 1}")
    assert _refused_fields(response) == [["query", "min_price"]]
