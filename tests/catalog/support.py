"""Helpers for catalog tests: staff credentials and products made through the API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from agora.core.security import Role, issue_access_token
from agora.settings import Settings


def auth(settings: Settings, role: Role = Role.STAFF) -> dict[str, str]:
    """A bearer header for a fresh user of ``role``."""
    return {"Authorization": f"Bearer {issue_access_token(settings, uuid.uuid4(), role)}"}


def variant(sku: str, amount: int = 1999, **attributes: Any) -> dict[str, Any]:
    """A variant payload."""
    return {"sku": sku, "price": {"amount": amount, "currency": "EUR"}, "attributes": attributes}


async def create_product(
    client: httpx.AsyncClient,
    settings: Settings,
    name: str,
    *,
    variants: list[dict[str, Any]] | None = None,
    status: str = "published",
    **fields: Any,
) -> dict[str, Any]:
    """Create a product through the staff API and return its body."""
    payload = {
        "name": name,
        "status": status,
        "variants": variants if variants is not None else [variant(uuid.uuid4().hex[:12])],
        **fields,
    }
    response = await client.post("/api/v1/products", json=payload, headers=auth(settings))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_category(
    client: httpx.AsyncClient, settings: Settings, name: str, parent_id: str | None = None
) -> dict[str, Any]:
    """Create a category through the staff API and return its body."""
    payload = {"name": name, "parent_id": parent_id}
    response = await client.post("/api/v1/categories", json=payload, headers=auth(settings))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
