"""The transactional outbox: events written with the change they describe, relayed after commit.

``record_event`` adds a row in the caller's transaction, so an event exists if and only if its
change committed. Relaying is asked for after commit (a best-effort nudge through
``core/jobs``: a broker outage only delays it), and a periodic sweep picks up what a lost nudge
left behind. The relay takes rows with ``FOR UPDATE SKIP LOCKED`` (several relays share the work
without waiting on each other), publishes each on Redis pub/sub and marks it relayed in the same
transaction. A crash between publishing and committing republishes the row later: delivery is at
least once, and every message carries the event's ``id`` so consumers can drop a duplicate and
order what they receive.

Each event goes to the ops channel (staff) and, when it has an owner, to that user's channel.
Consumers that must not lose an event (merchant webhooks) are handed each batch inside the
relay's transaction: what they write commits together with the batch being marked relayed, so
an event reaches them exactly when it is relayed, whatever crashes in between. Engines that keep
events as data (the log platform) register a relay listener, handed each relayed batch.
The kernel knows no domain: topics and payloads are the caller's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Index,
    Insert,
    String,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from agora.core.db import Base
from agora.core.jobs import nudge
from agora.core.serialization import dumps, loads

RELAY_TASK = "agora.outbox.relay"
CHANNEL_PREFIX = "agora:events:"
OPS_CHANNEL = CHANNEL_PREFIX + "ops"
_BATCH_SIZE = 200

Consumer = Callable[[AsyncSession, Sequence["OutboxEvent"]], Awaitable[None]]
RelayListener = Callable[[Redis, list[dict[str, Any]]], Awaitable[object]]
"""Handed each batch of relayed events as ``{id, topic, data, user_id, created_at}``; it must
handle its own failures (the relay goes on regardless)."""
_relay_listeners: list[RelayListener] = []


def add_relay_listener(listener: RelayListener) -> None:
    """Hand every batch of relayed events to ``listener`` too (once per process)."""
    if listener not in _relay_listeners:
        _relay_listeners.append(listener)


class OutboxEvent(Base):
    """Something that happened, waiting to be (or already) relayed to listeners."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_unrelayed",
            "id",
            postgresql_where="relayed_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    relayed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def as_dict(self) -> dict[str, Any]:
        """The event as relayed: ``{id, topic, data, user_id, created_at}``."""
        return {
            "id": self.id,
            "topic": self.topic,
            "data": self.payload,
            "user_id": self.user_id,
            "created_at": self.created_at,
        }

    def message(self) -> bytes:
        """The JSON message published for this event."""
        return dumps(self.as_dict())


def user_channel(user_id: uuid.UUID | str) -> str:
    """The pub/sub channel of one user's events."""
    return f"{CHANNEL_PREFIX}user:{user_id}"


def record_event(
    session: AsyncSession, topic: str, payload: dict[str, Any], *, user_id: uuid.UUID | None = None
) -> None:
    """Write an event in the session's transaction; it is relayed once that transaction commits.

    ``user_id`` names the owner who may see it (besides staff); the payload must be JSON-able
    (UUIDs and datetimes become strings).
    """
    session.add(OutboxEvent(topic=topic, payload=loads(dumps(payload)), user_id=user_id))
    nudge(session, RELAY_TASK)


def event_insert_template(
    assigned: ColumnElement[Any], owner: ColumnElement[Any] | None = None
) -> Insert:
    """``record_event`` for a change written by one statement built once (``core/driver.py``),
    as an ``INSERT … SELECT`` the caller runs inside that statement (a CTE); the event still
    commits exactly with the change, and saves a round trip. ``assigned`` is a JSONB object,
    read from the statement's other parts, of what the database assigns there (an identity),
    merged into the payload. Its topic, payload and owner are the bindparams ``event_topic``,
    ``event_payload`` and ``event_user_id``, whose values ``event_values`` gives; an ``owner``
    read from the statement's other parts (the row it changes) stands for the last."""
    payload = bindparam("event_payload", type_=JSONB)
    merged = payload.op("||", return_type=JSONB)(assigned)
    topic = bindparam("event_topic", type_=OutboxEvent.topic.type)
    if owner is None:
        owner = bindparam("event_user_id", type_=OutboxEvent.user_id.type)
    return insert(OutboxEvent).from_select(
        ["topic", "payload", "user_id"], select(topic, merged, owner)
    )


def event_values(
    session: AsyncSession, topic: str, payload: dict[str, Any], *, user_id: uuid.UUID | None
) -> dict[str, Any]:
    """The values of an ``event_insert_template``'s bindparams; the relay is nudged once the
    session's transaction commits."""
    nudge(session, RELAY_TASK)
    return {"event_topic": topic, "event_payload": loads(dumps(payload)), "event_user_id": user_id}


async def relay_pending(
    session: AsyncSession, redis: Redis, consumers: Sequence[Consumer] = ()
) -> int:
    """Publish every unrelayed event not held by another relay, handing each batch to
    ``consumers`` in the same transaction; return how many were published."""
    relayed = 0
    # Each batch starts after the last one: the rows this transaction already marked still sit
    # in the unrelayed index until it commits, and rescanning them from the start on every
    # batch made draining a backlog quadratic (minutes at 200,000 events).
    after = 0
    while True:
        events = list(
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.relayed_at.is_(None), OutboxEvent.id > after)
                .order_by(OutboxEvent.id)
                .limit(_BATCH_SIZE)
                .with_for_update(skip_locked=True)
            )
        )
        if not events:
            return relayed
        after = events[-1].id
        async with redis.pipeline(transaction=False) as pipeline:
            for event in events:
                message = event.message()
                if event.user_id is not None:
                    pipeline.publish(user_channel(event.user_id), message)
                pipeline.publish(OPS_CHANNEL, message)
            await pipeline.execute()
        for consume in consumers:
            await consume(session, events)
        for listener in _relay_listeners:
            await listener(redis, [event.as_dict() for event in events])
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([event.id for event in events]))
            .values(relayed_at=func.now())
        )
        relayed += len(events)
        if len(events) < _BATCH_SIZE:
            return relayed


async def purge_relayed(session: AsyncSession, older_than: dt.timedelta) -> int:
    """Delete events relayed more than ``older_than`` ago; returns how many were deleted."""
    result = await session.execute(
        delete(OutboxEvent).where(OutboxEvent.relayed_at < func.now() - older_than)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
