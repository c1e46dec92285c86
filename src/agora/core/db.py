"""The database: async engine, declarative ``Base`` and the unit of work.

A unit of work owns one transaction: it commits once at the end (or rolls back on error), and only
then sends the jobs and events buffered during the transaction (see ``core/jobs.py``). Services
``flush()``; they never commit.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, ClassVar, TypeVar

from sqlalchemy import DateTime, Enum, MetaData, event, func
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, RelationshipProperty, Session, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from agora.core.lease import LeasedSession, close, commit

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AfterCommitFlush = Callable[[list[Any]], Awaitable[None]]
AfterCommitCallback = Callable[[], Awaitable[None]]
MAX_BIND_PARAMETERS = 32_767  # PostgreSQL's limit for one statement
_Row = TypeVar("_Row")
_PENDING_KEY = "agora.after_commit.pending"
_COMMITTED_KEY = "agora.after_commit.committed"
_CHECKED_IN_KEY = "agora.checked_in_at"
IDLE_PING_AFTER = 5.0  # seconds a pooled connection may sit idle and still be used unchecked


class Base(DeclarativeBase):
    """Base of every table. Relationships load ``lazy="raise"`` unless they say otherwise.

    Forgetting to eager-load a relationship then fails loudly in tests instead of issuing one
    query per row in production.
    """

    metadata: ClassVar[MetaData] = MetaData(naming_convention=NAMING_CONVENTION)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        for value in list(vars(cls).values()):
            if isinstance(value, RelationshipProperty) and value.lazy == "select":
                value.lazy = "raise"
                value.strategy_key = (("lazy", "raise"),)
        super().__init_subclass__(**kwargs)


def enum_column(enum_type: type[enum.StrEnum]) -> Enum:
    """A column type storing a ``StrEnum`` by value, as a checked VARCHAR (easy to extend)."""
    return Enum(
        enum_type,
        native_enum=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


def statement_batches(rows: Sequence[_Row], parameters_per_row: int) -> Iterator[Sequence[_Row]]:
    """``rows`` cut into as few slices as one statement may bind, for a multi-row INSERT of
    any length (a sitemap's pages, a whole catalog's stock); a table's column count is a safe
    ``parameters_per_row``."""
    size = MAX_BIND_PARAMETERS // parameters_per_row
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class TimestampMixin:
    """``created_at`` and ``updated_at``, set by the database."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Database:
    """One engine and its session factory for the life of a process."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        pool_timeout: float = 30.0,
        echo: bool = False,
        idle_ping_after: float = IDLE_PING_AFTER,
    ) -> None:
        # At most ``pool_size`` connections, all kept once opened: overflow connections are
        # closed on return, so a steady load above the kept size opened and closed a PostgreSQL
        # connection for every few requests (a connect costs milliseconds of CPU on both sides).
        # A request finding them all in use waits up to ``pool_timeout`` seconds for one.
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=0, pool_timeout=pool_timeout, echo=echo
        )
        pool = self.engine.sync_engine.pool
        event.listen(pool, "checkin", _note_checkin)
        event.listen(pool, "checkout", partial(_ping_if_idle, idle_ping_after))
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=LeasedSession
        )

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits at the end, or rolls back if the block raises."""
        session = self.sessionmaker()
        try:
            try:
                yield session
                await commit(session)
            except BaseException:
                await session.rollback()
                raise
            await _flush_committed(session)
        finally:
            await close(session)


def _note_checkin(_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_KEY] = time.monotonic()


def _ping_if_idle(
    idle_ping_after: float, connection: Any, record: ConnectionPoolEntry, _proxy: Any
) -> None:
    """Ping a pooled connection before use only when it sat idle for ``idle_ping_after``
    seconds: when a server restart, an idle timeout or a firewall may have cut it.

    A ping on every checkout (``pool_pre_ping``) costs asyncpg three round trips (BEGIN, a
    query, ROLLBACK) per request; a connection in steady use was known good moments ago. A
    failed ping invalidates the pool (its older connections go too) and the pool hands out a
    fresh connection instead. A connection that breaks while in steady use fails its request
    once, and SQLAlchemy then invalidates the pool the same way (optimistic disconnect handling).
    """
    checked_in_at = record.info.get(_CHECKED_IN_KEY)
    if checked_in_at is None or time.monotonic() - checked_in_at < idle_ping_after:
        return
    try:
        connection.ping()
    except Exception as error:
        raise InvalidatePoolError(str(error)) from error


def pending(session: AsyncSession | Session, flush: AfterCommitFlush) -> list[Any]:
    """A list kept on the session, handed to ``flush`` once its transaction commits.

    The one after-commit mechanism (jobs, cache invalidations, callbacks): work is batched per
    ``flush``; a rollback drops it, and the flushes run in the order they were first asked for.
    """
    store: dict[AfterCommitFlush, list[Any]] = session.info.setdefault(_PENDING_KEY, {})
    return store.setdefault(flush, [])


def call_after_commit(session: AsyncSession, callback: AfterCommitCallback) -> None:
    """Await ``callback`` once the session's transaction commits; a rollback drops it.

    For effects outside the database that must follow a committed change (priming Redis with a
    new row's state); the callback handles its own failures, the transaction being already done.
    """
    pending(session, _run_callbacks).append(callback)


async def _run_callbacks(callbacks: list[AfterCommitCallback]) -> None:
    for callback in callbacks:
        await callback()


async def _flush_committed(session: AsyncSession) -> None:
    """Hand the work buffered by a unit of work that has just committed to its flushes."""
    committed: dict[AfterCommitFlush, list[Any]] = session.info.pop(_COMMITTED_KEY, {})
    for flush, items in committed.items():
        await flush(items)


@event.listens_for(Session, "after_commit")
def _promote_pending(session: Session) -> None:
    """On commit, the buffered work becomes committed work, ready to be sent."""
    buffered: dict[AfterCommitFlush, list[Any]] = session.info.pop(_PENDING_KEY, {})
    committed: dict[AfterCommitFlush, list[Any]] = session.info.setdefault(_COMMITTED_KEY, {})
    for key, items in buffered.items():
        committed.setdefault(key, []).extend(items)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    """On rollback, the buffered work is dropped: it was never meant to happen."""
    session.info.pop(_PENDING_KEY, None)
