"""pickup points: warehouse location, address, opening hours; orders collected at one

Revision ID: 0016a
Revises: 0004
Create Date: 2026-11-26 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.inventory.geo import Point

revision: str = "0016a"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "warehouses",
        sa.Column("is_pickup_point", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("warehouses", sa.Column("latitude", sa.Double(), nullable=True))
    op.add_column("warehouses", sa.Column("longitude", sa.Double(), nullable=True))
    op.add_column("warehouses", sa.Column("location", Point(), nullable=True))
    op.add_column(
        "warehouses", sa.Column("address", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "warehouses",
        sa.Column("opening_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("warehouses", sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.create_check_constraint(
        op.f("ck_warehouses_pickup_point_is_located"),
        "warehouses",
        "NOT is_pickup_point OR (location IS NOT NULL AND time_zone IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_warehouses_latitude_in_range"), "warehouses", "latitude BETWEEN -90 AND 90"
    )
    op.create_check_constraint(
        op.f("ck_warehouses_longitude_in_range"), "warehouses", "longitude BETWEEN -180 AND 180"
    )
    op.create_index(
        "ix_warehouses_pickup_location",
        "warehouses",
        ["location"],
        postgresql_using="gist",
        postgresql_where="is_pickup_point",
    )
    op.add_column("orders", sa.Column("pickup_point_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_orders_pickup_point_id_warehouses"),
        "orders",
        "warehouses",
        ["pickup_point_id"],
        ["id"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_orders_pickup_point_id_warehouses"), "orders", type_="foreignkey")
    op.drop_column("orders", "pickup_point_id")
    op.drop_index("ix_warehouses_pickup_location", table_name="warehouses")
    for name in ("longitude_in_range", "latitude_in_range", "pickup_point_is_located"):
        op.drop_constraint(op.f(f"ck_warehouses_{name}"), "warehouses", type_="check")
    for column in (
        "time_zone", "opening_hours", "address", "location", "longitude", "latitude",
        "is_pickup_point",
    ):  # fmt: skip
        op.drop_column("warehouses", column)
