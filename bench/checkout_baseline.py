"""The checkout's floor: Agora's own SQL for one checkout, replayed over asyncpg with no framework.

One checkout is run through the app in-process while an engine listener records every statement
it sends with its parameters, grouped by request (each request is one transaction). The replay
sends exactly those statements, in the same transactions (a lone statement without BEGIN and
COMMIT, as its own), on one asyncpg connection per client,
as a closed loop with the same concurrency as the HTTP load. Each replayed checkout gets fresh
ids for the rows the checkout creates (cart, order, lines, reservation, the key) and its client's
own buyer, so the replay writes new rows and takes the same row locks (the one hot stock row) as
Agora does; only the variant is shared. What the replay does not do is what Agora adds on top of
the database: HTTP, routing, validation, the ORM, the session, serialising the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import event

from agora.app import create_app
from agora.settings import Settings


@dataclass(frozen=True)
class Statement:
    """A statement as the driver got it: SQL, parameters, and whether it ran once per row."""

    sql: str
    parameters: Any
    is_many: bool


Transaction = list[Statement]


@dataclass(frozen=True)
class Sent:
    """A statement as one replay sent it: its parameters, and the rows it returned."""

    parameters: Any
    rows: list[asyncpg.Record]


Checkout = Callable[[httpx.AsyncClient], Awaitable[None]]


@dataclass
class Recording:
    """One checkout's transactions, and the ids that are not the checkout's own."""

    transactions: list[Transaction]
    buyer_id: uuid.UUID
    shared: frozenset[uuid.UUID]
    key: uuid.UUID


@dataclass
class ReplayResult:
    """Checkouts replayed and the time they took."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0


async def record(settings: Settings, checkout: Checkout) -> list[Transaction]:
    """The statements ``checkout`` makes the app send, one list per request (a transaction)."""
    app = create_app(settings)
    transactions: list[Transaction] = []

    def sent(_conn: Any, _cursor: Any, sql: str, parameters: Any, _ctx: Any, many: bool) -> None:
        transactions[-1].append(Statement(sql, parameters, many))

    async def next_request(_: httpx.Request) -> None:
        transactions.append([])

    async with app.router.lifespan_context(app):
        engine = app.state.services.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", sent)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            event_hooks={"request": [next_request]},
        ) as client:
            await checkout(client)
        event.remove(engine, "before_cursor_execute", sent)
    return [transaction for transaction in transactions if transaction]


class Renamer:
    """Fresh ids for one replayed checkout: each id the recording created becomes a new one
    (as a value, and inside strings and bytes such as JSON payloads and the stored answer)."""

    def __init__(self, recording: Recording, buyer_id: uuid.UUID) -> None:
        self.ids: dict[uuid.UUID, uuid.UUID] = {}
        self.texts: list[tuple[str, str]] = []
        self.recording = recording
        self.add(recording.key, uuid.uuid4())
        self.add(recording.buyer_id, buyer_id)

    def add(self, old: uuid.UUID, new: uuid.UUID) -> None:
        """Rename ``old`` to ``new`` from now on."""
        self.ids[old] = new
        self.texts += [(str(old), str(new)), (old.hex, new.hex)]

    def value(self, value: Any) -> Any:
        """``value`` with the recording's own ids renamed."""
        if isinstance(value, uuid.UUID):
            if value not in self.ids and value not in self.recording.shared:
                self.add(value, uuid.uuid4())
            return self.ids.get(value, value)
        if isinstance(value, str):
            for old, new in self.texts:
                if old in value:
                    value = value.replace(old, new)
            return value
        if isinstance(value, list):  # an array parameter (rows written from arrays)
            return [self.value(item) for item in value]
        if isinstance(value, bytes):
            for old, new in self.texts:
                value = value.replace(old.encode(), new.encode())
            return value
        return value

    def parameters(self, statement: Statement) -> Any:
        """The parameters to send ``statement`` with in this checkout."""
        if statement.is_many:
            return [tuple(map(self.value, row)) for row in statement.parameters]
        return tuple(map(self.value, statement.parameters))


async def _replay_once(
    connection: asyncpg.Connection, recording: Recording, buyer_id: uuid.UUID
) -> None:
    renamer = Renamer(recording, buyer_id)
    for transaction in recording.transactions:
        await send_transaction(connection, transaction, renamer)


async def send_transaction(
    connection: asyncpg.Connection | PoolConnectionProxy, transaction: Transaction, renamer: Renamer
) -> list[Sent]:
    """Send ``transaction``'s statements with ``renamer``'s ids: what each was sent with and
    what it returned (no rows for one run once per row)."""
    sent = []
    # A single statement is its own transaction: it needs no BEGIN and COMMIT around it.
    wrapped = connection.transaction() if len(transaction) > 1 else contextlib.nullcontext()
    async with wrapped:
        for statement in transaction:
            parameters = renamer.parameters(statement)
            if statement.is_many:
                await connection.executemany(statement.sql, parameters)
                sent.append(Sent(parameters, []))
            else:
                sent.append(Sent(parameters, await connection.fetch(statement.sql, *parameters)))
    return sent


@contextlib.asynccontextmanager
async def connections(dsn: str, count: int) -> AsyncIterator[list[asyncpg.Connection]]:
    """``count`` asyncpg connections, one per replaying client, closed at the end."""
    opened = [await asyncpg.connect(dsn) for _ in range(count)]
    try:
        yield opened
    finally:
        for connection in opened:
            await connection.close()


async def replay(
    connections: list[asyncpg.Connection],
    recording: Recording,
    buyer_ids: Sequence[uuid.UUID],
    duration: float,
) -> ReplayResult:
    """Replay the recorded checkout for ``duration`` seconds from one client per connection,
    each as its own buyer; what it did."""
    result = ReplayResult()
    started = time.perf_counter()
    await _loop(connections, recording, buyer_ids, duration, result)
    result.elapsed = time.perf_counter() - started
    return result


async def _loop(
    connections: list[asyncpg.Connection],
    recording: Recording,
    buyer_ids: Sequence[uuid.UUID],
    duration: float,
    result: ReplayResult,
) -> None:
    deadline = time.perf_counter() + duration

    async def client(connection: asyncpg.Connection, buyer_id: uuid.UUID) -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                await _replay_once(connection, recording, buyer_id)
            except asyncpg.PostgresError:
                result.errors += 1
                continue
            result.latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*map(client, connections, buyer_ids))
