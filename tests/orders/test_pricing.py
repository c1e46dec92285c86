"""Shipping methods and vouchers at checkout, over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx

from agora.core.db import Database
from agora.core.security import Role
from agora.settings import Settings
from tests.factories import Account, create_user, create_users, create_variant
from tests.orders.support import buy, fill_cart, order_cart


async def _staff_post(
    client: httpx.AsyncClient, staff: Account, path: str, body: dict[str, object]
) -> None:
    response = await client.post(f"/api/v1/{path}", json=body, headers=staff.headers)
    assert response.status_code == 201, response.text
    located = await client.get(response.headers["location"], headers=staff.headers)
    assert located.json() == response.json()


async def test_weight_based_and_flat_shipping_cheapest_by_default(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    heavy = await create_variant(database, price=3000, weight_grams=1200, stock=10)
    await _staff_post(
        client,
        staff,
        "shipping-methods",
        {
            "code": "parcel",
            "name": "Parcel",
            "kind": "weight",
            "currency": "EUR",
            "base_amount": 300,
            "per_kg_amount": 150,
        },
    )
    await _staff_post(
        client,
        staff,
        "shipping-methods",
        {
            "code": "courier",
            "name": "Courier",
            "kind": "flat",
            "currency": "EUR",
            "base_amount": 1500,
            "free_over_amount": 10000,
        },
    )

    cheapest = await buy(client, buyer, {heavy: 2})
    chosen = await buy(client, buyer, {heavy: 2}, shipping_method="courier")
    free = await buy(client, buyer, {heavy: 4}, shipping_method="courier")
    unknown = await order_cart(
        client, buyer, await fill_cart(client, buyer, {heavy: 1}), shipping_method="drone"
    )

    assert (cheapest["shipping_method"], cheapest["shipping"]["amount"]) == (
        "parcel",
        300 + 3 * 150,
    )
    assert cheapest["total"]["amount"] == 6000 + 750
    assert chosen["shipping"]["amount"] == 1500
    assert free["shipping"]["amount"] == 0
    assert (unknown.status_code, unknown.json()["code"]) == (422, "shipping_method_unavailable")
    listed = (await client.get("/api/v1/shipping-methods")).json()["items"]
    assert [method["code"] for method in listed] == ["courier", "parcel"]


async def test_percentage_and_fixed_vouchers(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    variant = await create_variant(database, price=3333, stock=10)
    await _staff_post(
        client, staff, "vouchers", {"code": "tenoff", "kind": "percentage", "value": 10}
    )
    await _staff_post(
        client,
        staff,
        "vouchers",
        {
            "code": "BIG",
            "kind": "fixed",
            "value": 100000,
            "currency": "EUR",
        },
    )
    await _staff_post(
        client,
        staff,
        "vouchers",
        {
            "code": "MIN",
            "kind": "fixed",
            "value": 100,
            "currency": "EUR",
            "min_subtotal_amount": 10000,
        },
    )

    percent = await buy(client, buyer, {variant: 1}, voucher_code="TenOff")
    fixed = await buy(client, buyer, {variant: 1}, voucher_code="big")
    below = await order_cart(
        client, buyer, await fill_cart(client, buyer, {variant: 1}), voucher_code="MIN"
    )

    assert (percent["discount"]["amount"], percent["total"]["amount"]) == (333, 3000)
    assert percent["voucher_code"] == "TENOFF"
    assert (fixed["discount"]["amount"], fixed["total"]["amount"]) == (3333, 0)
    assert (below.status_code, below.json()["code"]) == (422, "voucher_minimum_not_met")
    expired_window = {
        "code": "LATER",
        "kind": "percentage",
        "value": 5,
        "starts_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
    }
    await _staff_post(client, staff, "vouchers", expired_window)
    later = await order_cart(
        client, buyer, await fill_cart(client, buyer, {variant: 1}), voucher_code="LATER"
    )
    assert (later.status_code, later.json()["code"]) == (422, "voucher_invalid")


async def test_voucher_usage_limit_holds_under_concurrency_and_cancel_gives_a_use_back(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyers = await create_users(database, settings, 8)
    variant = await create_variant(database, stock=100)
    await _staff_post(
        client,
        staff,
        "vouchers",
        {
            "code": "FIRST3",
            "kind": "percentage",
            "value": 50,
            "usage_limit": 3,
        },
    )
    carts = [await fill_cart(client, buyer, {variant: 1}) for buyer in buyers]

    responses = await asyncio.gather(
        *(
            order_cart(client, buyer, cart, voucher_code="FIRST3")
            for buyer, cart in zip(buyers, carts, strict=True)
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 3 + [409] * 5
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"voucher_exhausted"}
    placed = next(r for r in responses if r.status_code == 201)
    owner = buyers[responses.index(placed)]
    await client.post(f"/api/v1/orders/{placed.json()['id']}/cancel", headers=owner.headers)
    vouchers = (await client.get("/api/v1/vouchers", headers=staff.headers)).json()["items"]
    assert vouchers[0]["used_count"] == 2


async def test_a_voucher_minimum_is_an_amount_of_its_currency(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    no_currency = {"code": "HALF", "kind": "percentage", "value": 50, "min_subtotal_amount": 5000}
    refused = await client.post("/api/v1/vouchers", json=no_currency, headers=staff.headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_voucher")
    await _staff_post(client, staff, "vouchers", {**no_currency, "currency": "EUR"})
    yen = await create_variant(database, price=6000, currency="JPY", stock=5)  # ¥6000 < €50
    euros = await create_variant(database, price=6000, currency="EUR", stock=5)

    in_yen = await order_cart(
        client, buyer, await fill_cart(client, buyer, {yen: 1}), voucher_code="HALF"
    )
    other_buyer = await create_user(database, settings)
    in_euros = await buy(client, other_buyer, {euros: 1}, voucher_code="HALF")

    assert (in_yen.status_code, in_yen.json()["code"]) == (422, "voucher_currency_mismatch")
    assert in_euros["discount"] == {"amount": 3000, "currency": "EUR"}


async def test_a_zero_total_order_is_paid_at_once_without_a_provider(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    variant = await create_variant(database, price=2500, stock=3)
    await _staff_post(
        client, staff, "vouchers", {"code": "FREE", "kind": "percentage", "value": 100}
    )

    order = await buy(client, buyer, {variant: 2}, voucher_code="FREE")

    assert (order["status"], order["total"]["amount"]) == ("paid", 0)
    stored = await client.get(f"/api/v1/orders/{order['id']}", headers=buyer.headers)
    assert stored.json()["status"] == "paid"
    levels = await client.get(f"/api/v1/variants/{variant}/stock", headers=staff.headers)
    assert levels.json()["levels"][0]["allocated"] == 2
    payment = await client.post(
        f"/api/v1/orders/{order['id']}/payments", json={"provider": "dev"}, headers=buyer.headers
    )
    assert (payment.status_code, payment.json()["code"]) == (409, "order_not_payable")


async def test_a_refunded_order_gives_its_voucher_use_back(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    staff = await create_user(database, settings, Role.STAFF)
    buyer = await create_user(database, settings)
    variant = await create_variant(database, price=1000, stock=3)
    voucher = {"code": "ONCE", "kind": "percentage", "value": 10, "usage_limit": 1}
    await _staff_post(client, staff, "vouchers", voucher)
    order = await buy(client, buyer, {variant: 1}, voucher_code="ONCE")
    for status in ("paid", "refunded"):
        moved = await client.patch(
            f"/api/v1/orders/{order['id']}", json={"status": status}, headers=staff.headers
        )
        assert moved.json()["status"] == status

    vouchers = (await client.get("/api/v1/vouchers", headers=staff.headers)).json()["items"]
    assert vouchers[0]["used_count"] == 0
    again = await buy(client, buyer, {variant: 1}, voucher_code="ONCE")
    assert again["discount"]["amount"] == 100
