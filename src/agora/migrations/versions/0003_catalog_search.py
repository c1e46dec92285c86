"""catalog search, images, category tree guard, attribute index

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 04:12:00.120626
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PUBLISHED = sa.text("status = 'published'")


def upgrade() -> None:
    op.add_column(
        "categories", sa.Column("description", sa.Text(), server_default="", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_categories_not_own_parent"), "categories", "parent_id IS NULL OR parent_id <> id"
    )
    op.create_index(
        "ix_product_variants_attributes",
        "product_variants",
        ["attributes"],
        postgresql_using="gin",
        postgresql_ops={"attributes": "jsonb_path_ops"},
    )
    op.add_column(
        "products",
        sa.Column(
            "images", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
    )
    op.add_column(
        "products",
        sa.Column("search_vector", postgresql.TSVECTOR(), server_default="", nullable=False),
    )
    op.add_column("products", sa.Column("price_min_amount", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_products_published_name", "products", ["name", "id"], postgresql_where=_PUBLISHED
    )
    op.create_index(
        "ix_products_published_newest",
        "products",
        ["created_at", "id"],
        postgresql_where=_PUBLISHED,
    )
    op.create_index(
        "ix_products_published_price",
        "products",
        ["price_min_amount", "id"],
        postgresql_where=_PUBLISHED,
    )
    op.create_index(
        "ix_products_search_vector", "products", ["search_vector"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index("ix_products_search_vector", table_name="products")
    op.drop_index("ix_products_published_price", table_name="products")
    op.drop_index("ix_products_published_newest", table_name="products")
    op.drop_index("ix_products_published_name", table_name="products")
    op.drop_column("products", "price_min_amount")
    op.drop_column("products", "search_vector")
    op.drop_column("products", "images")
    op.drop_index("ix_product_variants_attributes", table_name="product_variants")
    op.drop_constraint(op.f("ck_categories_not_own_parent"), "categories", type_="check")
    op.drop_column("categories", "description")
