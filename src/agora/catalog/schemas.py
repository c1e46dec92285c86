"""Request and response models of the catalog API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from agora.catalog.models import ProductStatus
from agora.core.money import Money
from agora.core.validation import BigInt, NonNegativeBigInt

Slug = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", to_lower=True
    ),
]
Sku = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=200)]
    | bool
    | BigInt
    | Annotated[float, Field(allow_inf_nan=False)]
)
Attributes = Annotated[dict[AttributeName, AttributeValue], Field(max_length=50)]
Description = Annotated[str, StringConstraints(max_length=100_000)]
Images = Annotated[list[HttpUrl], Field(max_length=20)]
ProductSort = Literal["newest", "price_asc", "price_desc", "name", "relevance"]
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 24


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryCreate(_Input):
    """A new category; the slug is derived from the name when omitted."""

    name: CategoryName
    slug: Slug | None = None
    parent_id: uuid.UUID | None = None
    description: Annotated[str, StringConstraints(max_length=5_000)] = ""


class CategoryUpdate(_Input):
    """Fields of a category to change; ``parent_id: null`` moves it to the root."""

    name: CategoryName | None = None
    slug: Slug | None = None
    parent_id: uuid.UUID | None = None
    description: Annotated[str, StringConstraints(max_length=5_000)] | None = None


class CategoryOut(BaseModel):
    """A category of the tree."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    description: str


class CategoryDetail(CategoryOut):
    """A category with its path from the root (breadcrumbs) and its direct children."""

    ancestors: list[CategoryOut]
    children: list[CategoryOut]


class CategoryList(BaseModel):
    """Every category, parents before children."""

    items: list[CategoryOut]


class VariantCreate(_Input):
    """A new variant of a product."""

    sku: Sku
    price: Money
    attributes: Attributes = Field(default_factory=dict)
    weight_grams: Annotated[int, Field(ge=0, le=10_000_000)] = 0


class VariantUpdate(_Input):
    """Fields of a variant to change."""

    sku: Sku | None = None
    price: Money | None = None
    attributes: Attributes | None = None
    weight_grams: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class VariantOut(BaseModel):
    """A buyable variant, with whether it can be bought right now."""

    id: uuid.UUID
    sku: str
    price: Money
    attributes: dict[str, AttributeValue]
    weight_grams: int
    in_stock: bool


class ProductCreate(_Input):
    """A new product with its variants; the description is sanitised HTML."""

    name: Name
    slug: Slug | None = None
    description: Description = ""
    category_id: uuid.UUID | None = None
    status: ProductStatus = ProductStatus.DRAFT
    images: Images = Field(default_factory=list)
    variants: Annotated[list[VariantCreate], Field(max_length=100)] = Field(default_factory=list)


class ProductUpdate(_Input):
    """Fields of a product to change (publish with ``status: published``)."""

    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    category_id: uuid.UUID | None = None
    status: ProductStatus | None = None
    images: Images | None = None


class ProductSummary(BaseModel):
    """A product as lists show it: its variants, cheapest price, no description."""

    id: uuid.UUID
    slug: str
    name: str
    status: ProductStatus
    category_id: uuid.UUID | None
    images: list[str]
    price_from: Money | None
    variants: list[VariantOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class ProductDetail(ProductSummary):
    """A product with its description and category."""

    description: str
    category: CategoryOut | None


class ProductPage(BaseModel):
    """One page of products; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ProductSummary]
    next_cursor: str | None


class ProductQuery(BaseModel):
    """What a product list asks for: search, filters, order and page."""

    model_config = ConfigDict(frozen=True)

    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    category: Slug | None = None
    min_price: NonNegativeBigInt | None = None
    max_price: NonNegativeBigInt | None = None
    attributes: dict[AttributeName, Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=dict, max_length=10
    )
    status: ProductStatus = ProductStatus.PUBLISHED
    sort: ProductSort | None = None
    cursor: Annotated[str, StringConstraints(max_length=500)] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE

    @property
    def effective_sort(self) -> ProductSort:
        """Relevance when searching, newest first otherwise, unless asked."""
        return self.sort or ("relevance" if self.q else "newest")
