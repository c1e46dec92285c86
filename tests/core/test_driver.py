"""Statements sent straight to asyncpg run in the session's transaction, with SQLAlchemy's value
conversions, and are seen by the engine's listeners like any other."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from asyncpg import Record
from sqlalchemy import bindparam, event, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from agora.core.db import Database
from agora.core.driver import DriverStatement
from agora.core.idempotency import IdempotencyRecord

_INSERT = DriverStatement(
    insert(IdempotencyRecord)
    .values(
        scope=bindparam("scope"),
        key="k",
        fingerprint="f",
        status_code=201,
        headers=bindparam("headers"),
        body=b"{}",
        expires_at=func.now(),
    )
    .returning(IdempotencyRecord.headers)
)


class _Undo(Exception):
    pass


async def _inserted_then_rolled_back(
    database: Database, scope: str, headers: dict[str, str]
) -> Record | None:
    row = None
    with contextlib.suppress(_Undo):
        async with database.unit_of_work() as session:
            row = await _INSERT.fetchrow(session, scope=scope, headers=headers)
            raise _Undo
    return row


async def _stored(database: Database, scope: str) -> int:
    async with database.unit_of_work() as session:
        count = select(func.count()).where(IdempotencyRecord.scope == scope)
        return int(await session.scalar(count) or 0)


async def test_a_driver_statement_is_undone_with_its_transaction(database: Database) -> None:
    scope = uuid.uuid4().hex
    row = await _inserted_then_rolled_back(database, scope, {"Location": "/here"})

    assert row is not None
    assert row["headers"] == {"Location": "/here"}  # JSON written and read back
    assert await _stored(database, scope) == 0


async def test_a_driver_statement_after_an_orm_one_commits_with_it(database: Database) -> None:
    scope = uuid.uuid4().hex
    async with database.unit_of_work() as session:
        await session.scalar(select(func.count()).select_from(IdempotencyRecord))
        await _INSERT.fetch(session, scope=scope, headers={})

    assert await _stored(database, scope) == 1


async def test_a_violated_constraint_raises_sqlalchemys_integrity_error(
    database: Database,
) -> None:
    scope = uuid.uuid4().hex
    async with database.unit_of_work() as session:
        await _INSERT.fetch(session, scope=scope, headers={})
        with pytest.raises(IntegrityError):
            await _INSERT.fetch(session, scope=scope, headers={})  # the same primary key
        await session.rollback()

    assert await _stored(database, scope) == 0


async def test_a_connection_cut_under_a_driver_statement_is_replaced(database: Database) -> None:
    scope = uuid.uuid4().hex
    async with database.unit_of_work() as session:
        backend = await session.scalar(select(func.pg_backend_pid()))
        async with database.unit_of_work() as other:  # another connection cuts this one
            await other.execute(select(func.pg_terminate_backend(backend)))
        with pytest.raises(DBAPIError) as raised:
            await _INSERT.fetch(session, scope=scope, headers={})
        await session.rollback()

    assert raised.value.connection_invalidated
    async with database.unit_of_work() as session:  # the pool hands out a live connection
        await _INSERT.fetch(session, scope=scope, headers={})
    assert await _stored(database, scope) == 1


async def test_the_engines_listeners_see_a_driver_statement(database: Database) -> None:
    seen: list[Any] = []

    def record(*args: Any) -> None:
        seen.append(args[3])

    scope = uuid.uuid4().hex
    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await _inserted_then_rolled_back(database, scope, {"a": "b"})
    finally:
        event.remove(engine, "before_cursor_execute", record)

    # The parameters as asyncpg gets them: in order, the JSON document as text.
    assert seen == [(scope, "k", "f", 201, '{"a": "b"}', b"{}")]


def test_a_statement_whose_values_sqlalchemy_computes_is_refused() -> None:
    # ``headers`` has a Python default, computed per execution: the driver would send None.
    statement = insert(IdempotencyRecord).values(scope="s", key="k", fingerprint="f")

    with pytest.raises(ValueError, match="compile once"):
        DriverStatement(statement)
