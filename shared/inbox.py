"""Consumer inbox: exactly-once effects over at-least-once delivery.

A consumer inserts ``(consumer, event_id)`` into ``inbox`` in the SAME transaction as the
event's effect. If the row already exists the event was applied before (a redelivery, a relay
retry, a replay): the effect is skipped. Offsets are committed to the bus only after that
transaction commits, so a crash between the two redelivers an event the inbox then ignores.

Retention: a row only has to outlive every possible redelivery of its event, and the broker
cannot redeliver what it no longer holds. ``prune`` deletes rows older than
``MANDET_INBOX_RETENTION_HOURS`` (default 14 days, twice Kafka's default 7-day log retention);
keep it longer than the topics' ``retention.ms``, or a consumer group reset to the earliest
offset would apply the oldest events a second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    Uuid,
    delete,
    select,
    tuple_,
)
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database
from shared.dialect import insert_ignore, insert_rows
from shared.outbox import SeqType, utcnow


class InboxRow(SQLModel, table=True):
    __tablename__ = "inbox"
    __table_args__ = (PrimaryKeyConstraint("consumer", "event_id"),
                      Index("ix_inbox_processed_at", "processed_at"))

    consumer: str = Field(sa_column=Column(Text, nullable=False))
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    processed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ConsumerDeadLetter(SQLModel, table=True):
    """A delivered message this consumer could not apply, with the reason (never dropped)."""

    __tablename__ = "consumer_dead_letter"

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True,
                                                          autoincrement=True))
    consumer: str = Field(sa_column=Column(Text, nullable=False))
    topic: str = Field(sa_column=Column(Text, nullable=False))
    partition: int = Field(sa_column=Column(Integer, nullable=False))
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    event_id: str | None = Field(default=None, sa_column=Column(Text))
    event_type: str | None = Field(default=None, sa_column=Column(Text))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


INBOX = InboxRow.__table__
CONSUMER_DEAD = ConsumerDeadLetter.__table__


async def first_time_many(session: AsyncSession, consumer: str,
                          event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Record a batch of events in one statement; the ids not seen before by this consumer."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": i, "processed_at": now} for i in ids]
    return set(await insert_rows(session, INBOX, rows, ignore_conflicts=True,
                                 returning="event_id"))


async def first_time(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
    """Record the event as applied by this consumer; False if it already was."""
    dialect = session.get_bind().dialect.name
    stmt = (
        insert_ignore(INBOX, dialect)
        .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
        .returning(INBOX.c.event_id)
    )
    return (await session.execute(stmt)).first() is not None


async def prune(db: Database, retention: timedelta, chunk: int = 5_000) -> int:
    """Delete inbox rows processed more than ``retention`` ago; returns how many.

    Oldest first through ``ix_inbox_processed_at``, ``chunk`` rows a transaction, so neither
    a long lock nor a table scan: safe beside live consumers (a row being deleted is for an
    event the broker no longer holds, see the module docstring).
    """
    cutoff, removed = utcnow() - retention, 0
    key = tuple_(INBOX.c.consumer, INBOX.c.event_id)
    while True:
        oldest = (select(INBOX.c.consumer, INBOX.c.event_id)
                  .where(INBOX.c.processed_at < cutoff)
                  .order_by(INBOX.c.processed_at).limit(chunk))
        async with db.engine.begin() as conn:
            n = (await conn.execute(delete(INBOX).where(key.in_(oldest)))).rowcount
        removed += n
        if n < chunk:
            return removed
