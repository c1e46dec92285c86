"""A session's statements, the ORM's and the driver's, share one leased connection and one
transaction in any order; a session the ORM never touched commits on the driver alone, its
errors raised as SQLAlchemy raises them, and what waits for the commit runs only once it is
done. Every connection goes back to the pool."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    bindparam,
    event,
    func,
    insert,
)
from sqlalchemy import select as select_
from sqlalchemy.exc import DBAPIError, IntegrityError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database, call_after_commit
from agora.core.driver import DriverStatement

_METADATA = MetaData()
# Its uniqueness is checked at COMMIT, so a commit on the driver can fail.
_PROBE = Table(
    "lease_probe",
    _METADATA,
    Column("id", Integer),
    UniqueConstraint("id", name="uq_lease_probe_id", deferrable=True, initially="DEFERRED"),
)
_INSERT = DriverStatement(insert(_PROBE).values(id=bindparam("id")))
_BACKEND = DriverStatement(select_(func.pg_backend_pid()))
_SLEEP = DriverStatement(select_(func.pg_sleep(30)))


class _Undo(Exception):
    pass


@pytest.fixture(params=["quiet", "listened"])
def engine_listeners(request: pytest.FixtureRequest, database: Database) -> Iterator[None]:
    """The engine without listeners, or with one (the driver then builds the ORM's connection
    over the lease to announce its statements): a lost connection is refused either way."""
    engine = database.engine.sync_engine
    if request.param == "quiet":
        yield
        return

    def listen(*_: Any) -> None:
        pass

    event.listen(engine, "before_cursor_execute", listen)
    yield
    event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture
async def probe(database: Database) -> AsyncIterator[None]:
    async with database.engine.begin() as connection:
        await connection.run_sync(_METADATA.create_all)
    yield
    async with database.engine.begin() as connection:
        await connection.run_sync(_METADATA.drop_all)


async def _rows(database: Database, row_id: int) -> int:
    async with database.unit_of_work() as session:
        count = select_(func.count()).select_from(_PROBE).where(_PROBE.c.id == row_id)
        return int(await session.scalar(count) or 0)


def _recorded() -> tuple[list[bool], Callable[[], Awaitable[None]]]:
    """An after-commit callback, and the list it appends to each time it runs."""
    ran: list[bool] = []

    async def after_commit() -> None:
        ran.append(True)

    return ran, after_commit


def _checked_out(database: Database) -> int:
    checked_out: int = database.engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    return checked_out


@pytest.mark.usefixtures("probe")
async def test_an_orm_statement_after_a_driver_one_shares_its_transaction(
    database: Database,
) -> None:
    seen = None
    with contextlib.suppress(_Undo):
        async with database.unit_of_work() as session:
            await _INSERT.fetch(session, id=1)
            seen = await session.scalar(select_(func.count()).where(_PROBE.c.id == 1))
            raise _Undo

    assert seen == 1  # the ORM saw the driver's row, not yet committed
    assert await _rows(database, 1) == 0  # and both went with the rollback
    assert _checked_out(database) == 0


@pytest.mark.usefixtures("probe")
async def test_a_unit_of_work_the_orm_never_touched_commits_before_its_after_commit_work(
    database: Database,
) -> None:
    seen: list[int] = []

    async def after_commit() -> None:
        seen.append(await _rows(database, 2))

    async with database.unit_of_work() as session:
        await _INSERT.fetch(session, id=2)
        call_after_commit(session, after_commit)
        orm_used = session.in_transaction()

    assert not orm_used
    assert seen == [1]  # another connection already saw the committed row
    assert _checked_out(database) == 0


@pytest.mark.usefixtures("probe")
async def test_a_commit_on_the_driver_that_fails_raises_sqlalchemys_error_and_runs_nothing(
    database: Database,
) -> None:
    ran, after_commit = _recorded()

    async def insert_twice() -> None:
        async with database.unit_of_work() as session:
            await _INSERT.fetch(session, id=3)
            await _INSERT.fetch(session, id=3)  # the duplicate is found at COMMIT
            call_after_commit(session, after_commit)

    with pytest.raises(IntegrityError):
        await insert_twice()
    assert ran == []
    assert await _rows(database, 3) == 0
    assert _checked_out(database) == 0


async def _cut_under_the_driver(database: Database, session: AsyncSession, row_id: int) -> None:
    """A row inserted by the driver, then the session's connection cut by another one."""
    row = await _BACKEND.fetchrow(session)
    assert row is not None
    await _INSERT.fetch(session, id=row_id)
    async with database.unit_of_work() as other:
        await other.execute(select_(func.pg_terminate_backend(row[0])))
    with pytest.raises(DBAPIError):
        await _INSERT.fetch(session, id=row_id + 1)


@pytest.mark.usefixtures("probe", "engine_listeners")
async def test_a_connection_lost_under_the_driver_is_replaced_only_after_a_rollback(
    database: Database,
) -> None:
    async with database.unit_of_work() as session:
        await _cut_under_the_driver(database, session, 4)
        with pytest.raises(PendingRollbackError):
            await _INSERT.fetch(session, id=6)  # would commit without row 4
        await session.rollback()
        await _INSERT.fetch(session, id=7)  # a fresh connection, a fresh transaction

    assert [await _rows(database, row_id) for row_id in (4, 5, 6, 7)] == [0, 0, 0, 1]
    assert _checked_out(database) == 0


@pytest.mark.usefixtures("probe", "engine_listeners")
async def test_a_unit_of_work_whose_connection_was_lost_does_not_commit(
    database: Database,
) -> None:
    ran, after_commit = _recorded()

    async def swallow_the_loss() -> None:
        async with database.unit_of_work() as session:
            call_after_commit(session, after_commit)
            await _cut_under_the_driver(database, session, 8)

    with pytest.raises(PendingRollbackError):
        await swallow_the_loss()

    assert ran == []
    assert await _rows(database, 8) == 0
    assert _checked_out(database) == 0


@pytest.mark.usefixtures("probe")
@pytest.mark.parametrize("statement", ["driver", "orm"])
async def test_a_unit_of_work_cancelled_mid_statement_rolls_back_and_gives_its_connection_back(
    database: Database, statement: str
) -> None:
    started = asyncio.Event()

    async def slow_write() -> None:
        async with database.unit_of_work() as session:
            await _INSERT.fetch(session, id=9)
            started.set()
            if statement == "driver":
                await _SLEEP.fetch(session)
            else:
                await session.execute(select_(func.pg_sleep(30)))

    writer = asyncio.create_task(slow_write())
    await started.wait()
    await asyncio.sleep(0.05)  # the sleep is on the server
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer

    assert await _rows(database, 9) == 0
    assert _checked_out(database) == 0
