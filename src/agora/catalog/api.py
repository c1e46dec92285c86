"""The catalog's HTTP API: cached buyer reads with ETags, and the staff endpoints that write."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import QueryParams
from starlette.responses import Response

from agora.catalog import service
from agora.catalog.models import ProductStatus
from agora.catalog.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CategoryCreate,
    CategoryDetail,
    CategoryList,
    CategoryOut,
    CategoryUpdate,
    ProductCreate,
    ProductDetail,
    ProductPage,
    ProductQuery,
    ProductSort,
    ProductUpdate,
    VariantCreate,
    VariantOut,
    VariantUpdate,
)
from agora.core.dependencies import AppServices, CacheDep, RedisDep, ServicesDep, SessionDep
from agora.core.edge import mark_public
from agora.core.security import MaybePrincipal, StaffPrincipal
from agora.core.validation import NonNegativeBigInt

router = APIRouter(tags=["catalog"])
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified (ETag)"}}
_STAFF_CACHE_CONTROL = "private, no-store"
_ATTRIBUTE_PREFIX = "attr."


def _cached(request: Request, document: service.Document, cache_control: str) -> Response:
    """The document, or 304 when the client's ``If-None-Match`` names its ETag."""
    headers = {"ETag": document.etag, "Cache-Control": cache_control}
    if _etag_matches(request.headers.get("if-none-match"), document.etag):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)


def _public(request: Request, services: AppServices, document: service.Document) -> Response:
    """A buyer document, cacheable for as long as the shop's catalog cache control says, and
    kept by the edge cache until its tags are invalidated."""
    mark_public(request.scope.setdefault("state", {}), document.tags)
    return _cached(request, document, services.settings.catalog_cache_control)


def _located(request: Request, response: Response, route: str, **params: Any) -> None:
    """Point ``response``'s ``Location`` at the ``route`` endpoint for ``params``."""
    response.headers["Location"] = str(request.url_for(route, **params))


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def _product_query(fields: dict[str, Any], params: QueryParams) -> ProductQuery:
    """The list query: the declared parameters, plus the ``attr.<name>=<value>`` filters."""
    fields = {name: value for name, value in fields.items() if value is not None}
    fields["attributes"] = {
        name.removeprefix(_ATTRIBUTE_PREFIX): value
        for name, value in params.multi_items()
        if name.startswith(_ATTRIBUTE_PREFIX)
    }
    try:
        return ProductQuery.model_validate(fields)
    except ValidationError as exc:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc


@router.get(
    "/categories", response_model=CategoryList, responses=_NOT_MODIFIED, summary="All categories"
)
async def list_categories(request: Request, services: ServicesDep, cache: CacheDep) -> Response:
    document = await service.categories_document(cache, services.database)
    return _public(request, services, document)


@router.get(
    "/categories/{slug}",
    response_model=CategoryDetail,
    responses=_NOT_MODIFIED,
    summary="A category with its breadcrumbs and children",
)
async def get_category(
    slug: str, request: Request, services: ServicesDep, cache: CacheDep
) -> Response:
    document = await service.category_document(cache, services.database, slug.lower())
    return _public(request, services, document)


@router.post("/categories", status_code=201, summary="Create a category (staff)")
async def create_category(
    data: CategoryCreate,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
    request: Request,
    response: Response,
) -> CategoryOut:
    category = await service.create_category(session, redis, data)
    _located(request, response, "get_category", slug=category.slug)
    return category


@router.patch("/categories/{category_id}", summary="Change or move a category (staff)")
async def update_category(
    category_id: uuid.UUID,
    data: CategoryUpdate,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> CategoryOut:
    return await service.update_category(session, redis, category_id, data)


@router.delete("/categories/{category_id}", status_code=204, summary="Delete a category (staff)")
async def delete_category(
    category_id: uuid.UUID, _: StaffPrincipal, session: SessionDep, redis: RedisDep
) -> None:
    await service.delete_category(session, redis, category_id)


@router.get(
    "/products",
    response_model=ProductPage,
    responses=_NOT_MODIFIED,
    summary="Search and list published products (staff also drafts)",
    description="Filter on variant attributes with `attr.<name>=<value>` (repeatable). "
    "Staff list drafts with `status=draft`; anyone else gets 403 for it.",
)
async def list_products(
    request: Request,
    principal: MaybePrincipal,
    services: ServicesDep,
    cache: CacheDep,
    q: Annotated[str | None, Query(description="Search words, English or Chinese")] = None,
    category: Annotated[str | None, Query(description="Category slug, descendants too")] = None,
    min_price: Annotated[NonNegativeBigInt | None, Query(description="Minor units")] = None,
    max_price: Annotated[NonNegativeBigInt | None, Query(description="Minor units")] = None,
    status: Annotated[ProductStatus, Query(description="Staff only: `draft`")] = (
        ProductStatus.PUBLISHED
    ),
    sort: ProductSort | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Response:
    declared = {"q": q, "category": category, "min_price": min_price, "max_price": max_price}
    declared |= {"status": status, "sort": sort, "cursor": cursor, "limit": limit}
    query = _product_query(declared, request.query_params)
    if query.status != ProductStatus.PUBLISHED and principal is not None and principal.is_staff:
        document = await service.staff_product_page_document(services.database, query)
        return _cached(request, document, _STAFF_CACHE_CONTROL)
    document = await service.product_page_document(cache, services.database, query)
    return _public(request, services, document)


@router.get(
    "/products/{id_or_slug}",
    response_model=ProductDetail,
    responses=_NOT_MODIFIED,
    summary="A product with its variants (staff also see drafts)",
)
async def get_product(
    id_or_slug: str,
    request: Request,
    principal: MaybePrincipal,
    services: ServicesDep,
    cache: CacheDep,
) -> Response:
    if principal is not None and principal.is_staff:
        document = await service.staff_product_document(services.database, id_or_slug)
        return _cached(request, document, _STAFF_CACHE_CONTROL)
    document = await service.product_document(cache, services.database, id_or_slug)
    return _public(request, services, document)


@router.post("/products", status_code=201, summary="Create a product with variants (staff)")
async def create_product(
    data: ProductCreate,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
    request: Request,
    response: Response,
) -> ProductDetail:
    product = await service.create_product(session, redis, data)
    _located(request, response, "get_product", id_or_slug=product.id)
    return product


@router.patch("/products/{product_id}", summary="Change or publish a product (staff)")
async def update_product(
    product_id: uuid.UUID,
    data: ProductUpdate,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> ProductDetail:
    return await service.update_product(session, redis, product_id, data)


@router.delete("/products/{product_id}", status_code=204, summary="Delete a product (staff)")
async def delete_product(
    product_id: uuid.UUID, _: StaffPrincipal, session: SessionDep, redis: RedisDep
) -> None:
    await service.delete_product(session, redis, product_id)


@router.post("/products/{product_id}/variants", status_code=201, summary="Add a variant (staff)")
async def add_variant(
    product_id: uuid.UUID,
    data: VariantCreate,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
    request: Request,
    response: Response,
) -> VariantOut:
    variant = await service.add_variant(session, redis, product_id, data)
    _located(request, response, "get_product", id_or_slug=product_id)
    return variant


@router.patch("/products/{product_id}/variants/{variant_id}", summary="Change a variant (staff)")
async def update_variant(
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
    data: VariantUpdate,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> VariantOut:
    return await service.update_variant(session, redis, product_id, variant_id, data)


@router.delete(
    "/products/{product_id}/variants/{variant_id}",
    status_code=204,
    summary="Delete a variant (staff)",
)
async def delete_variant(
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
    _: StaffPrincipal,
    session: SessionDep,
    redis: RedisDep,
) -> None:
    await service.delete_variant(session, redis, product_id, variant_id)
