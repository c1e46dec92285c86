"""Hot statements sent straight to asyncpg, inside the session's transaction.

A statement run through ``AsyncSession.execute`` costs about 80-120 µs of CPU in SQLAlchemy
(cache key, execution context, result wrapping, the greenlet hop) where asyncpg alone costs
about 17 µs; a statement built per call (CTEs with ``RETURNING``) costs a few hundred more. A
``DriverStatement`` is a Core statement built once, with named ``bindparam``\\ s, compiled once
to asyncpg's SQL text; each call converts its values with the statement's own bind
processors (an enum to its value, a JSON document to text) and sends it on the session's
connection, in the session's transaction, which it opens first if no statement has yet.
asyncpg prepares the text once per connection (its statement cache).

The engine's ``before_cursor_execute`` listeners see each statement as if SQLAlchemy had sent
it (the statement counts pinned by tests, and recordings of what a request sends). Rows come
back as asyncpg records, without SQLAlchemy's result processing: read JSON and plain columns
from them, and convert enum values yourself. For the statements that run on every request of a
hot path; everything else stays with the ORM or ``session.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from asyncpg import Record
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from agora.core.lease import Lease, lease_of, translated

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_Processor = Callable[[Any], Any] | None
_Binds = tuple[tuple[str, Any, _Processor], ...]  # name, value when not given, processor


class DriverStatement:
    """A Core statement compiled once, at import, run on asyncpg with keyword values for its
    bindparams (a bindparam given a value when the statement was built may be left out).

    A statement with values SQLAlchemy computes per execution (a column's Python default, an
    expanding IN) is refused here: give them as bindparams, or send it through the session.
    """

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.post_compile_params:
            raise ValueError(f"not a statement to compile once: {compiled.string}")
        defaults = compiled.construct_params(_check=False)
        processors = compiled._bind_processors  # what SQLAlchemy applies itself
        self.sql = compiled.string
        self.binds: _Binds = tuple(
            (name, defaults.get(name), processors.get(name))  # type: ignore[misc]
            for name in compiled.positiontup or ()
        )

    async def fetch(self, session: AsyncSession, **values: Any) -> list[Record]:
        """Every row the statement returns."""
        rows: list[Record] = await _run(session, self, "fetch", values)
        return rows

    async def fetchrow(self, session: AsyncSession, **values: Any) -> Record | None:
        """The first row the statement returns, or None."""
        row: Record | None = await _run(session, self, "fetchrow", values)
        return row

    async def fetchrow_unbegun(self, session: AsyncSession, **values: Any) -> Record | None:
        """``fetchrow`` for a statement that needs no transaction around it: a read, or a write
        whose effect stands on its own whatever follows (an idempotent upsert). Sent on the
        session's connection without beginning its transaction when none has begun yet (it then
        runs in its own, as if in autocommit): a request that ends with it sends neither BEGIN
        nor COMMIT, two round trips of three for a one-statement request; statements after it
        begin the transaction as usual, with a later snapshot. Inside a transaction already
        begun, it is ``fetchrow``."""
        row: Record | None = await _run(session, self, "fetchrow", values, begin=False)
        return row


async def _run(
    session: AsyncSession,
    statement: DriverStatement,
    method: str,
    values: dict[str, Any],
    begin: bool = True,
) -> Any:
    """``statement`` sent with asyncpg's ``method`` on the session's connection; its errors
    raised as SQLAlchemy would raise them."""
    connection, parameters = await _prepared(session, statement, values, begin)
    try:
        return await getattr(connection.driver_connection, method)(statement.sql, *parameters)
    except Exception as error:
        raise await translated(session, connection, statement.sql, parameters, error) from error


async def _prepared(
    session: AsyncSession, statement: DriverStatement, values: dict[str, Any], begin: bool = True
) -> tuple[PoolProxiedConnection, Sequence[Any]]:
    """The session's pooled connection (leased, and its transaction begun, if need be, unless
    not ``begin``) and the statement's parameters in order, announced to the engine's
    listeners."""
    converted = []
    for name, default, processor in statement.binds:
        value = values.get(name, default)
        converted.append(value if processor is None else processor(value))
    parameters = tuple(converted)
    lease = lease_of(session)
    # Checking a connection out of the pool may connect: in a greenlet, as the ORM would.
    pooled = lease.live()
    if pooled is None:
        pooled = await greenlet_spawn(lease.pooled)
    adapted = pooled.dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement of a transaction: a
    # statement sent around it must begin it the same way, or it would run outside it.
    if begin and adapted._transaction is None:  # type: ignore[union-attr]
        await adapted._start_transaction()  # type: ignore[union-attr]
    _announce(lease, statement.sql, parameters)
    return pooled, parameters


def _announce(lease: Lease, sql: str, parameters: Sequence[Any]) -> None:
    """Hand the statement to the engine's ``before_cursor_execute`` listeners, if any, with
    the ORM's connection over the lease."""
    if not lease.engine._has_events:
        return
    connection = lease.connection()
    for listener in connection.dispatch.before_cursor_execute:
        listener(connection, None, sql, parameters, None, False)
