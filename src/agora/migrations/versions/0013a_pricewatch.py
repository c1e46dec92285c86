"""price watch: sites, targets, price changes

Revision ID: 0013a
Revises: 0001
Create Date: 2026-11-26 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013a"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    op.create_table(
        "pricewatch_sites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("delay_ms", sa.Integer(), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("recrawl_min_s", sa.Integer(), nullable=False),
        sa.Column("recrawl_max_s", sa.Integer(), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("delay_ms >= 0", name=op.f("ck_pricewatch_sites_delay_not_negative")),
        sa.CheckConstraint(
            "max_concurrency >= 1", name=op.f("ck_pricewatch_sites_max_concurrency_positive")
        ),
        sa.CheckConstraint(
            "recrawl_min_s >= 1 AND recrawl_max_s >= recrawl_min_s",
            name=op.f("ck_pricewatch_sites_recrawl_bounds"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricewatch_sites")),
        sa.UniqueConstraint("host", name=op.f("uq_pricewatch_sites_host")),
    )
    op.create_table(
        "pricewatch_targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=True),
        sa.Column("price_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("in_stock", sa.Boolean(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "price_amount >= 0", name=op.f("ck_pricewatch_targets_price_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["pricewatch_sites.id"],
            name=op.f("fk_pricewatch_targets_site_id_pricewatch_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_pricewatch_targets_variant_id_product_variants"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricewatch_targets")),
        sa.UniqueConstraint("url", name=op.f("uq_pricewatch_targets_url")),
    )
    op.create_index(
        op.f("ix_pricewatch_targets_site_id"), "pricewatch_targets", ["site_id"], unique=False
    )
    op.create_index(
        op.f("ix_pricewatch_targets_variant_id"), "pricewatch_targets", ["variant_id"], unique=False
    )
    op.create_table(
        "pricewatch_price_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("price_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("in_stock", sa.Boolean(), nullable=True),
        sa.Column(
            "observed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["pricewatch_targets.id"],
            name=op.f("fk_pricewatch_price_changes_target_id_pricewatch_targets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricewatch_price_changes")),
    )
    op.create_index(
        "ix_pricewatch_price_changes_target_id_id",
        "pricewatch_price_changes",
        ["target_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("pricewatch_price_changes")
    op.drop_table("pricewatch_targets")
    op.drop_table("pricewatch_sites")
