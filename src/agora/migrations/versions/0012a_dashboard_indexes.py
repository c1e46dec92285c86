"""dashboard: index paid orders by payment time and callbacks by arrival

Revision ID: 0012a
Revises: 0005
Create Date: 2026-11-26 07:25:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012a"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_paid", "orders", ["paid_at"], postgresql_where="paid_at IS NOT NULL")
    op.create_index("ix_payment_inbox_received", "payment_inbox", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_payment_inbox_received", table_name="payment_inbox")
    op.drop_index("ix_orders_paid", table_name="orders")
