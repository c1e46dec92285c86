"""Tables of the log platform.

``log_lines`` is partitioned by day on ``ts`` (partitions live in the ``logs`` schema, made ahead
and dropped after the retention period by ``partitions.py``); it is loaded with COPY, so it is a
Core table, never an ORM entity. ``log_rollups`` holds per-minute aggregates with a mergeable
latency sketch. Ingest keys, alert rules, their episodes and notification deliveries are ORM
entities like any other.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base, TimestampMixin, enum_column

PARTITION_SCHEMA = "logs"
LINE_ID_SEQUENCE = "log_lines_id_seq"

log_lines = Table(
    "log_lines",
    Base.metadata,
    Column(
        "id",
        BigInteger,
        nullable=False,
        server_default=text(f"nextval('{LINE_ID_SEQUENCE}'::regclass)"),
    ),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("service", Text),
    Column("host", Text),
    Column("level", Text),
    Column("message", Text),
    Column("method", Text),
    Column("path", Text),
    Column("route", Text),
    Column("status", SmallInteger),
    Column("duration_ms", Double),
    Column("bytes", BigInteger),
    Column("ip", Text),
    Column("user_agent", Text),
    Column("request_id", Text),
    Column("trace_id", Text),
    Column("attrs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column(
        "search",
        TSVECTOR,
        Computed("to_tsvector('simple'::regconfig, COALESCE(message, ''::text))", persisted=True),
    ),
    Index("ix_log_lines_ts_brin", "ts", postgresql_using="brin"),
    Index("ix_log_lines_ts_id", "ts", "id"),
    Index("ix_log_lines_status_ts", "status", "ts"),
    Index("ix_log_lines_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    Index("ix_log_lines_search", "search", postgresql_using="gin"),
    Index(
        "ix_log_lines_attrs",
        "attrs",
        postgresql_using="gin",
        postgresql_ops={"attrs": "jsonb_path_ops"},
    ),
    postgresql_partition_by="RANGE (ts)",
)

log_rollups = Table(
    "log_rollups",
    Base.metadata,
    Column("minute", DateTime(timezone=True), primary_key=True),
    Column("service", Text, primary_key=True),
    Column("route", Text, primary_key=True),
    Column("status_class", SmallInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("timed", BigInteger, nullable=False),
    Column("sketch", JSONB, nullable=False),
)

log_ingest_batches = Table(
    "log_ingest_batches",
    Base.metadata,
    Column("entry_id", String(64), primary_key=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_log_ingest_batches_loaded_at", "loaded_at"),
)


class IngestKey(Base):
    """A key that may ship log lines (and nothing else); only its SHA-256 digest is stored."""

    __tablename__ = "log_ingest_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AlertMetric(enum.StrEnum):
    """What an alert rule measures over its window."""

    COUNT = "count"
    ERROR_RATE = "error_rate"
    P95 = "p95"
    P99 = "p99"


class AlertState(enum.StrEnum):
    """Where a rule (and its current episode) stands."""

    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertRule(TimestampMixin, Base):
    """A condition on the logs, checked every few seconds, notified by a signed webhook."""

    __tablename__ = "alert_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    q: Mapped[str] = mapped_column(Text, default="")
    metric: Mapped[AlertMetric] = mapped_column(enum_column(AlertMetric))
    op: Mapped[str] = mapped_column(String(1))
    threshold: Mapped[float] = mapped_column(Double)
    window_s: Mapped[int] = mapped_column(Integer)
    for_s: Mapped[int] = mapped_column(Integer)
    hysteresis: Mapped[float] = mapped_column(Double)
    webhook_url: Mapped[str] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    state: Mapped[AlertState] = mapped_column(enum_column(AlertState), default=AlertState.OK)
    last_value: Mapped[float | None] = mapped_column(Double)
    evaluated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AlertEpisode(Base):
    """One stretch during which a rule's condition held: pending, then firing, then resolved."""

    __tablename__ = "alert_episodes"
    __table_args__ = (Index("ix_alert_episodes_rule_id_started_at", "rule_id", "started_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    status: Mapped[AlertState] = mapped_column(enum_column(AlertState))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    value: Mapped[float] = mapped_column(Double)
    peak_value: Mapped[float] = mapped_column(Double)


class AlertDelivery(Base):
    """One attempt to deliver an episode's notification, kept as its delivery log."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_episode_id", "episode_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    episode_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("alert_episodes.id", ondelete="CASCADE")
    )
    event: Mapped[AlertState] = mapped_column(enum_column(AlertState))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
