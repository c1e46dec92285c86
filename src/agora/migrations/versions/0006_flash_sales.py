"""flash sales and their tickets

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-24 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMPS = (
    ("created_at", sa.DateTime(timezone=True)),
    ("updated_at", sa.DateTime(timezone=True)),
)


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(name, kind, server_default=sa.text("now()"), nullable=False)
        for name, kind in _TIMESTAMPS
    ]


def upgrade() -> None:
    op.create_table(
        "flash_sales",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("price_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("per_user_limit", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("units_ordered", sa.Integer(), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("units_returned", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_flash_sales_quantity_not_negative")),
        sa.CheckConstraint(
            "per_user_limit > 0", name=op.f("ck_flash_sales_per_user_limit_positive")
        ),
        sa.CheckConstraint("price_amount >= 0", name=op.f("ck_flash_sales_price_not_negative")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_flash_sales_window_not_empty")),
        sa.CheckConstraint(
            "units_ordered >= 0 AND units_ordered <= quantity",
            name=op.f("ck_flash_sales_units_ordered_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_flash_sales_variant_id_product_variants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_flash_sales_warehouse_id_warehouses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_sales")),
    )
    op.create_index(op.f("ix_flash_sales_ends_at"), "flash_sales", ["ends_at"], unique=False)
    op.create_index(op.f("ix_flash_sales_variant_id"), "flash_sales", ["variant_id"], unique=False)
    op.create_table(
        "flash_sale_tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sale_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued", "ordered", "rejected", name="ticketstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("units_returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_returned_to_sale", sa.Boolean(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_flash_sale_tickets_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_flash_sale_tickets_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["flash_sales.id"],
            name=op.f("fk_flash_sale_tickets_sale_id_flash_sales"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_sale_tickets")),
        sa.UniqueConstraint("order_id", name=op.f("uq_flash_sale_tickets_order_id")),
    )
    op.create_index(
        op.f("ix_flash_sale_tickets_buyer_id"), "flash_sale_tickets", ["buyer_id"], unique=False
    )
    op.create_index(
        "ix_flash_sale_tickets_sale_id_status",
        "flash_sale_tickets",
        ["sale_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("flash_sale_tickets")
    op.drop_table("flash_sales")
