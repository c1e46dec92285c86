"""nullable shipping address, scheduled jobs, flash-sale buyers and state epoch

Revision ID: 0010b
Revises: 0006
Create Date: 2026-11-26 07:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010b"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("orders", "shipping_address", nullable=True)
    # Flash-sale orders bought without an address were stored with an empty object.
    op.execute("UPDATE orders SET shipping_address = NULL WHERE shipping_address = '{}'::jsonb")
    op.create_table(
        "scheduled_jobs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_jobs")),
    )
    op.create_index(
        "ix_scheduled_jobs_due",
        "scheduled_jobs",
        ["due_at"],
        unique=False,
        postgresql_where="published_at IS NULL",
    )

    op.add_column(
        "flash_sales",
        sa.Column("state_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "flash_sale_buyers",
        sa.Column("sale_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_id", sa.Uuid(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.CheckConstraint("units >= 0", name=op.f("ck_flash_sale_buyers_units_not_negative")),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["flash_sales.id"],
            name=op.f("fk_flash_sale_buyers_sale_id_flash_sales"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sale_id", "buyer_id", name=op.f("pk_flash_sale_buyers")),
    )
    # The units each buyer holds in the sales already running, from their tickets.
    op.execute(
        """
        INSERT INTO flash_sale_buyers (sale_id, buyer_id, units)
        SELECT sale_id, buyer_id, sum(quantity) FROM flash_sale_tickets
        WHERE status = 'ordered' AND (units_returned_at IS NULL OR NOT is_returned_to_sale)
        GROUP BY sale_id, buyer_id
        """
    )


def downgrade() -> None:
    op.drop_table("flash_sale_buyers")
    op.drop_column("flash_sales", "state_epoch")
    op.drop_index("ix_scheduled_jobs_due", table_name="scheduled_jobs")
    op.drop_table("scheduled_jobs")
    op.execute("UPDATE orders SET shipping_address = '{}'::jsonb WHERE shipping_address IS NULL")
    op.alter_column("orders", "shipping_address", nullable=False)
