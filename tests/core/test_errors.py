"""Every error is an RFC 9457 problem document; bad input is a 422, never a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, Field

from agora.core.errors import Conflict


class Widget(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(gt=0)


def add_routes(app: FastAPI) -> None:
    @app.post("/widgets")
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @app.get("/sold-out")
    async def sold_out() -> None:
        raise Conflict("No units left.", code="sold_out", remaining=0)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("database password is hunter2")


async def test_agora_error_becomes_a_problem_document(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    add_routes(app)
    response = await client.get("/sold-out")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://agora.dev/problems/sold-out",
        "title": "Conflict",
        "status": 409,
        "detail": "No units left.",
        "code": "sold_out",
        "instance": "/sold-out",
        "remaining": 0,
    }


async def test_invalid_body_is_a_422_listing_each_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    add_routes(app)
    response = await client.post("/widgets", json={"name": "", "quantity": "many"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert {tuple(error["loc"]) for error in body["errors"]} == {
        ("body", "name"),
        ("body", "quantity"),
    }


async def test_malformed_json_is_a_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    add_routes(app)
    response = await client.post(
        "/widgets", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


async def test_unexpected_error_is_a_500_that_leaks_nothing(app: FastAPI) -> None:
    add_routes(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/broken")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "hunter2" not in response.text
