"""log platform: day-partitioned lines, rollups, ingest keys, alerts

Revision ID: 0011a
Revises: 0001
Create Date: 2026-11-26 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011a"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS logs")
    op.execute("CREATE SEQUENCE log_lines_id_seq AS bigint")
    op.execute(
        """
        CREATE TABLE log_lines (
            id bigint NOT NULL DEFAULT nextval('log_lines_id_seq'::regclass),
            ts timestamptz NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            service text, host text, level text, message text, method text, path text,
            route text, status smallint, duration_ms double precision, bytes bigint, ip text,
            user_agent text, request_id text, trace_id text,
            attrs jsonb NOT NULL DEFAULT '{}'::jsonb,
            search tsvector GENERATED ALWAYS AS
                (to_tsvector('simple'::regconfig, COALESCE(message, ''::text))) STORED
        ) PARTITION BY RANGE (ts)
        """
    )
    op.execute("ALTER SEQUENCE log_lines_id_seq OWNED BY log_lines.id")
    op.create_index("ix_log_lines_ts_brin", "log_lines", ["ts"], postgresql_using="brin")
    op.create_index("ix_log_lines_ts_id", "log_lines", ["ts", "id"])
    op.create_index("ix_log_lines_status_ts", "log_lines", ["status", "ts"])
    op.create_index(
        "ix_log_lines_path", "log_lines", ["path"], postgresql_ops={"path": "text_pattern_ops"}
    )
    op.create_index("ix_log_lines_search", "log_lines", ["search"], postgresql_using="gin")
    op.create_index(
        "ix_log_lines_attrs",
        "log_lines",
        ["attrs"],
        postgresql_using="gin",
        postgresql_ops={"attrs": "jsonb_path_ops"},
    )
    op.create_table(
        "log_rollups",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("status_class", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("timed", sa.BigInteger(), nullable=False),
        sa.Column("sketch", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint(
            "minute", "service", "route", "status_class", name=op.f("pk_log_rollups")
        ),
    )
    op.create_table(
        "log_ingest_batches",
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_log_ingest_batches")),
    )
    op.create_index(
        "ix_log_ingest_batches_loaded_at", "log_ingest_batches", ["loaded_at"], unique=False
    )
    op.create_table(
        "log_ingest_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_ingest_keys")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_log_ingest_keys_key_digest")),
    )
    _create_alert_tables()


def _create_alert_tables() -> None:
    state = sa.Enum(
        "ok", "pending", "firing", "resolved", name="alertstate", native_enum=False, length=32
    )
    metric = sa.Enum(
        "count", "error_rate", "p95", "p99", name="alertmetric", native_enum=False, length=32
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("q", sa.Text(), nullable=False),
        sa.Column("metric", metric, nullable=False),
        sa.Column("op", sa.String(length=1), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("for_s", sa.Integer(), nullable=False),
        sa.Column("hysteresis", sa.Double(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=False),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("state", state, nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_table(
        "alert_episodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("status", state, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("peak_value", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_episodes_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_episodes")),
    )
    op.create_index(
        "ix_alert_episodes_rule_id_started_at", "alert_episodes", ["rule_id", "started_at"]
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("episode_id", sa.Uuid(), nullable=False),
        sa.Column("event", state, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["alert_episodes.id"],
            name=op.f("fk_alert_deliveries_episode_id_alert_episodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index("ix_alert_deliveries_episode_id", "alert_deliveries", ["episode_id"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alert_episodes")
    op.drop_table("alert_rules")
    op.drop_table("log_ingest_keys")
    op.drop_table("log_ingest_batches")
    op.drop_table("log_rollups")
    op.drop_table("log_lines")
    op.execute("DROP SCHEMA IF EXISTS logs CASCADE")
