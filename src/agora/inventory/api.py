"""Staff endpoints of inventory: warehouses and stock levels."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from agora.core.dependencies import SessionDep
from agora.core.security import StaffPrincipal
from agora.inventory import service
from agora.inventory.schemas import (
    StockIn,
    VariantStockOut,
    WarehouseIn,
    WarehouseList,
    WarehouseOut,
)

router = APIRouter(tags=["inventory"])


@router.get("/warehouses", summary="List warehouses")
async def list_warehouses(_: StaffPrincipal, session: SessionDep) -> WarehouseList:
    """Every warehouse, the default first."""
    warehouses = await service.list_warehouses(session)
    return WarehouseList(items=[WarehouseOut.model_validate(item) for item in warehouses])


@router.post("/warehouses", status_code=201, summary="Create a warehouse")
async def create_warehouse(
    body: WarehouseIn, _: StaffPrincipal, session: SessionDep, response: Response
) -> WarehouseOut:
    """A new warehouse; 409 if its code is taken."""
    warehouse = await service.create_warehouse(
        session, body.code, body.name, is_default=body.is_default
    )
    response.headers["Location"] = f"/api/v1/warehouses/{warehouse.id}"
    return WarehouseOut.model_validate(warehouse)


@router.get("/warehouses/{warehouse_id}", summary="A warehouse")
async def get_warehouse(
    warehouse_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> WarehouseOut:
    """One warehouse."""
    return WarehouseOut.model_validate(await service.get_warehouse(session, warehouse_id))


@router.get("/variants/{variant_id}/stock", summary="A variant's stock levels")
async def get_stock(
    variant_id: uuid.UUID, _: StaffPrincipal, session: SessionDep
) -> VariantStockOut:
    """Units on hand, reserved, allocated and available, per warehouse."""
    return VariantStockOut.model_validate(await service.variant_stock(session, variant_id))


@router.put("/variants/{variant_id}/stock", summary="Set a variant's units on hand")
async def put_stock(
    variant_id: uuid.UUID, body: StockIn, _: StaffPrincipal, session: SessionDep
) -> VariantStockOut:
    """Set the units on hand in a warehouse (the default one when omitted)."""
    stock = await service.set_stock(session, variant_id, body.quantity, body.warehouse_id)
    return VariantStockOut.model_validate(stock)
