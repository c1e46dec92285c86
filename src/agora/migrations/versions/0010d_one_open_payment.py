"""one open payment per order; a voucher minimum has a currency

Revision ID: 0010d
Revises: 0005
Create Date: 2026-11-26 07:00:00.000000

Orders that hold several pending payments keep the newest open; the older ones become
``cancelled`` (a capture of one of them is still recorded, and flagged for a refund).
A voucher minimum now needs a currency. A voucher made before with a minimum and no currency
cannot say which orders reach it: it is deactivated and its minimum cleared (so the constraint
holds); staff recreate it with a currency.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010d"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE payments SET status = 'cancelled'
        WHERE status = 'pending' AND id NOT IN (
            SELECT DISTINCT ON (order_id) id FROM payments
            WHERE status = 'pending'
            ORDER BY order_id, created_at DESC, id DESC
        )
        """
    )
    op.create_index(
        "uq_payments_open_order",
        "payments",
        ["order_id"],
        unique=True,
        postgresql_where="status = 'pending'",
    )
    op.execute(
        "UPDATE vouchers SET is_active = false, min_subtotal_amount = 0 "
        "WHERE min_subtotal_amount > 0 AND currency IS NULL"
    )
    op.create_check_constraint(
        op.f("ck_vouchers_minimum_has_currency"),
        "vouchers",
        "min_subtotal_amount = 0 OR currency IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_vouchers_minimum_has_currency"), "vouchers", type_="check")
    op.drop_index(
        "uq_payments_open_order", table_name="payments", postgresql_where="status = 'pending'"
    )
    op.execute("UPDATE payments SET status = 'failed' WHERE status = 'cancelled'")
