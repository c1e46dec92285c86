"""A read sent with ``fetchrow_unbegun`` takes no part in the session's transaction: sent first,
it begins none (a request that ends with it sends no BEGIN and no COMMIT); statements after it
begin the transaction as usual."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.db import Database
from agora.core.driver import DriverStatement

_ECHO = DriverStatement(select(bindparam("value", type_=None).label("value")))


async def _in_transaction(session: AsyncSession) -> bool:
    raw = await (await session.connection()).get_raw_connection()
    driver: Any = raw.driver_connection
    return bool(driver.is_in_transaction())


async def test_a_first_unbegun_read_begins_no_transaction(database: Database) -> None:
    async with database.unit_of_work() as session:
        row = await _ECHO.fetchrow_unbegun(session, value="a")
        after_read = await _in_transaction(session)
        await _ECHO.fetchrow(session, value="b")
        after_statement = await _in_transaction(session)

    assert row is not None
    assert row["value"] == "a"
    assert (after_read, after_statement) == (False, True)


async def test_an_unbegun_read_inside_a_transaction_is_part_of_it(database: Database) -> None:
    async with database.unit_of_work() as session:
        await _ECHO.fetchrow(session, value="a")
        row = await _ECHO.fetchrow_unbegun(session, value="b")

        assert row is not None
        assert row["value"] == "b"
        assert await _in_transaction(session)
