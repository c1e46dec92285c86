"""The session's connection, leased from the pool without the ORM's transaction machinery.

Binding a session to its connection the ORM's way (``Session.connection()``) and committing it
costs a request about a quarter of a millisecond of CPU: a ``SessionTransaction`` with its
snapshot and state checks, a Core ``Connection`` over a pool checkout, then the mirror image at
commit and close. A hot request needs only the pooled asyncpg connection and its transaction
(``core/driver.py``), which cost a fraction of that.

``LeasedSession`` is the sync session behind every ``AsyncSession`` of ``Database``. Its
``Lease`` checks the pooled connection out on first use, by a driver statement or by the ORM;
the ORM gets a Core ``Connection`` built over that same pooled connection, and only when it
needs one. The statements of one session thus share one connection and one transaction, sent by
the driver or by the ORM in any order:

- **commit:** pending ORM changes are flushed first (joining the lease if there are any); when
  the ORM's connection is in a transaction, the ORM commits it, driver statements included;
  else the lease's own transaction is committed on the driver. The ORM's commit and its
  ``after_commit`` listeners run after the database has committed. ``commit`` (the unit of
  work's) commits a session the ORM has not touched on the driver alone, without entering the
  ORM at all: a greenlet hop and an empty ORM transaction less for most hot requests.
- **rollback:** the ORM's, then whatever is still open on the driver.
- **close:** the ORM's session closed, then the connection given back to the pool, which rolls
  back what is still open.
- **a connection lost** under a driver statement: the session refuses every statement and the
  commit until it is rolled back, as the ORM refuses after losing its own; a statement sent on
  a fresh connection meanwhile would commit without those sent before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, PendingRollbackError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn


class Lease:
    """The pooled connection of one session, checked out on first use and kept until the
    session closes. The methods that may do I/O run in a greenlet (as the ORM's do)."""

    __slots__ = ("_core", "_lost", "_pooled", "engine")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pooled: PoolProxiedConnection | None = None
        self._core: Connection | None = None
        self._lost = False  # the driver's connection died under the session: roll back first

    def live(self) -> PoolProxiedConnection | None:
        """The leased connection while it is usable, without any I/O; else None."""
        if self._core is not None:
            return None if self._core.invalidated else self._core.connection
        pooled = self._pooled
        return pooled if pooled is not None and pooled.is_valid else None

    def pooled(self) -> PoolProxiedConnection:
        """The leased connection, checked out now if need be. One that died under the session
        is replaced only once the session is rolled back (``refuse_if_lost``); the ORM's
        connection refuses likewise."""
        self.refuse_if_lost()
        if self._core is not None:
            return self._core.connection
        if self._pooled is None or not self._pooled.is_valid:
            self._pooled = self.engine.raw_connection()
        return self._pooled

    def connection(self) -> Connection:
        """The ORM's connection: a Core ``Connection`` over the leased pooled connection."""
        if self._core is None:
            self._core = Connection(self.engine, connection=self.pooled())
        return self._core

    def refuse_if_lost(self) -> None:
        """Raise while the session's connection is lost with what it had sent: its later
        statements would run, and commit, without the earlier ones."""
        if self._lost:
            raise PendingRollbackError(
                "This session's connection was lost; roll the session back before using it."
            )

    def orm_in_transaction(self) -> bool:
        """Whether the ORM has joined the lease and its transaction is open."""
        return self._core is not None and self._core.in_transaction()

    def commit(self) -> None:
        """Commit the transaction open on the driver, if any (its errors raised as SQLAlchemy
        would raise them)."""
        self.refuse_if_lost()
        pooled = self.live()
        if pooled is None:
            return
        try:
            pooled.commit()
        except self.engine.dialect.loaded_dbapi.Error as error:
            raise self.wrapped("COMMIT", (), error) from error

    def wrapped(self, sql: str, parameters: Sequence[Any], error: Exception) -> StatementError:
        """A DB-API ``error`` raised by ``sql`` as the ``sqlalchemy.exc`` class SQLAlchemy
        raises for it (an ``IntegrityError`` for a violated constraint), so callers catch one
        family whoever sent the statement; the connection invalidated when found dead, so the
        pool replaces it instead of handing it out again."""
        dialect = self.engine.dialect
        dead = dialect.is_disconnect(error, self.live(), None)  # type: ignore[arg-type]
        if dead:
            self.invalidate(error)
        return DBAPIError.instance(
            sql,
            tuple(parameters),
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dead,
            dialect=dialect,
        )

    def rollback(self) -> None:
        """Roll back the transaction open on the driver, if any."""
        self._lost = False
        pooled = self.live()
        if pooled is not None:
            pooled.rollback()

    def invalidate(self, error: BaseException) -> None:
        """The connection found dead: closed, its pool slot refilled on the next checkout."""
        self._lost = True
        if self._core is not None:
            self._core.invalidate(error)
        elif self._pooled is not None and self._pooled.is_valid:
            self._pooled.invalidate(error)

    def release(self) -> None:
        """Give the connection back to the pool (which rolls back what is still open)."""
        core, pooled = self._core, self._pooled
        self._core = self._pooled = None
        self._lost = False
        if core is not None:
            core.close()
        elif pooled is not None and pooled.is_valid:
            pooled.close()

    def settled(self) -> bool:
        """Whether giving the connection back sends nothing: none leased, or no transaction
        open on it (committed or rolled back), nor an ORM transaction over it."""
        if self.orm_in_transaction():
            return False
        pooled = self.live()
        return pooled is None or pooled.dbapi_connection._transaction is None  # type: ignore[union-attr]


class LeasedSession(Session):
    """A session whose statements, the ORM's and the driver's, run on its ``Lease``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.bind, Engine), "a leased session is bound to an engine"
        self.lease = Lease(self.bind)

    def get_bind(self, *args: Any, **kwargs: Any) -> Connection:
        """The ORM's connection, over the lease, whatever the statement or mapper."""
        return self.lease.connection()

    def commit(self) -> None:
        self.flush()
        if not self.lease.orm_in_transaction():
            self.lease.commit()
        super().commit()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.lease.rollback()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.lease.release()

    def reset(self) -> None:
        try:
            super().reset()
        finally:
            self.lease.release()

    def invalidate(self) -> None:
        try:
            super().invalidate()
        finally:
            self.lease.release()


def lease_of(session: AsyncSession) -> Lease:
    """The lease of a session of ``Database``."""
    sync_session = session.sync_session
    assert isinstance(sync_session, LeasedSession), "a session of Database"
    return sync_session.lease


async def translated(
    session: AsyncSession,
    pooled: PoolProxiedConnection,
    sql: str,
    parameters: Sequence[Any],
    error: Exception,
) -> Exception:
    """The exception SQLAlchemy would have raised for an asyncpg ``error`` raised by ``sql`` on
    the session's ``pooled`` connection (see ``Lease.wrapped``)."""
    try:
        pooled.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]
    except Exception as dbapi_error:
        wrapped: Exception = await greenlet_spawn(
            lease_of(session).wrapped, sql, parameters, dbapi_error
        )
        return wrapped
    return error


async def commit(session: AsyncSession) -> None:
    """Commit a session of ``Database``: one the ORM has not touched (no transaction of its own,
    nothing pending) on the driver alone, its ``after_commit`` listeners then run as the ORM
    runs them; any other through the ORM."""
    sync_session = session.sync_session
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        await session.commit()
        return
    lease = lease_of(session)
    lease.refuse_if_lost()
    pooled = lease.live()
    adapted: Any = None if pooled is None else pooled.dbapi_connection
    if adapted is not None and adapted._transaction is not None:
        try:
            await adapted._call_and_discard(adapted._transaction.commit)
        except Exception as error:
            assert pooled is not None
            raise await translated(session, pooled, "COMMIT", (), error) from error
    sync_session.dispatch.after_commit(sync_session)


async def close(session: AsyncSession) -> None:
    """Close a session of ``Database``. A settled one (``Lease.settled``) at once: its
    connection goes back to the pool without I/O, so there is nothing for a cancellation to
    interrupt. Any other as ``AsyncSession``'s own ``async with`` closes it: in a task of its
    own, run to completion even if the caller is cancelled (a task, a shield and a greenlet hop,
    which every request paid before)."""
    if not session.in_transaction() and lease_of(session).settled():
        session.sync_session.close()
        return
    async with session:
        pass
