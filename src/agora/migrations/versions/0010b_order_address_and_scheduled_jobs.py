"""nullable shipping address, scheduled jobs (the outbox of jobs)

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


def downgrade() -> None:
    op.drop_index("ix_scheduled_jobs_due", table_name="scheduled_jobs")
    op.drop_table("scheduled_jobs")
    op.execute("UPDATE orders SET shipping_address = '{}'::jsonb WHERE shipping_address IS NULL")
    op.alter_column("orders", "shipping_address", nullable=False)
