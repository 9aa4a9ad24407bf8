"""The consumer loop: decode, apply through the inbox, commit, then commit offsets.

Entry points only translate (STYLE principle 2): handlers hold the rules; this loop maps
failures to a retry or a dead letter.
- A batch is applied in one database transaction (fast path). Offsets are committed only after
  it commits.
- If the batch fails and the database is reachable, each message is retried alone, up to
  ``max_attempts``; one that still fails is written to ``consumer_dead_letter`` with the reason
  and the loop moves on, so one poison message never blocks a partition.
- If the database is unreachable, nothing is dead-lettered: the same batch is retried after a
  pause, and the bus redelivers it if this process dies meanwhile.
- ``after_commit`` (the relay's wake-up) runs after a batch transaction that wrote outbox
  rows, and only then: a consumer that publishes nothing (reports) would otherwise make its
  relay claim nothing after every batch (0.5 of 6 CPU s of the reports worker at 1,000
  events/s). On PostgreSQL the outbox's insert NOTIFY wakes the relay as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import logs
from shared.bus.base import Bus, Message
from shared.db import Database
from shared.events import Envelope, Event, UnknownEvent, decode, read
from shared.inbox import CONSUMER_DEAD, first_time, first_time_many
from shared.outbox import utcnow, wrote_events

log = logging.getLogger("mandet.consumer")

Handler = Callable[[AsyncSession, Envelope, Event], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[tuple[Envelope, Event]]], Awaitable[None]]


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    lag: int = 0


class ConsumerRunner:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        name: str,
        handlers: dict[str, tuple[str, Handler]],
        batch_size: int = 500,
        max_attempts: int = 5,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """handlers: event type -> (topic, handler). ``name`` is the group and inbox key."""
        self.db, self.bus, self.name = db, bus, name
        self.handlers = handlers
        self.topics = sorted({topic for topic, _ in handlers.values()})
        self.batch_size, self.max_attempts = batch_size, max_attempts
        self.after_commit = after_commit
        self.stats = ConsumerStats()
        self.consumer = bus.consumer(name, self.topics)
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        await self.consumer.start()
        self.started.set()
        try:
            while not stop.is_set():
                try:
                    batch = await self.consumer.getmany(max_records=self.batch_size,
                                                        timeout=0.2)
                    if batch:
                        await self.process(batch, stop)
                        await self.consumer.commit(batch)
                    self.stats.lag = await self.consumer.lag()
                except Exception:  # noqa: BLE001 - the bus is briefly away: never die for it
                    # What was applied is committed in the database; its offsets go with the
                    # next commit, or the batch is redelivered and the inbox drops it.
                    log.exception("consumer %s: bus call failed; retrying", self.name)
                    await asyncio.sleep(1.0)
        finally:
            await self.consumer.stop()

    async def process(self, batch: Sequence[Message], stop: asyncio.Event) -> None:
        """Apply a batch durably (or dead-letter its poison messages). Never loses one."""
        while not stop.is_set():
            try:
                await self._apply(batch)
                return
            except Exception as exc:  # noqa: BLE001 - classified below
                if not await self._database_reachable():
                    log.warning("database unreachable; retrying batch: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                await self._one_by_one(batch)
                return
        raise asyncio.CancelledError("stopped before the batch was applied")

    async def _apply(self, batch: Sequence[Message]) -> None:
        async with self.db.transaction() as session:
            for message in batch:
                await self._apply_one(session, message)
        if self.after_commit and wrote_events(session):
            self.after_commit()

    async def _apply_one(self, session: AsyncSession, message: Message) -> None:
        got = read(message.value, self.handlers)
        if got is None:
            return  # not an event this consumer cares about
        envelope, event = got
        route = self.handlers[envelope.type]
        token = logs.event_id.set(str(envelope.id))  # every log line in the handler carries it
        try:
            if await first_time(session, self.name, envelope.id):
                await route[1](session, envelope, event)
                self.stats.applied += 1
            else:
                self.stats.duplicates += 1
        finally:
            logs.event_id.reset(token)

    async def _one_by_one(self, batch: Sequence[Message]) -> None:
        for message in batch:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    await self._apply([message])
                    break
                except (UnknownEvent, ValueError) as exc:
                    await self._dead_letter(message, exc)  # will never decode: no retry
                    break
                except Exception as exc:  # noqa: BLE001
                    if attempt == self.max_attempts:
                        await self._dead_letter(message, exc)
                    else:
                        await asyncio.sleep(0.05 * attempt)

    async def _dead_letter(self, message: Message, exc: BaseException) -> None:
        envelope = _try_decode(message.value)
        async with self.db.transaction() as session:
            await session.execute(insert(CONSUMER_DEAD).values(
                consumer=self.name, topic=message.topic, partition=message.partition,
                offset=message.offset,
                event_id=str(envelope.id) if envelope else None,
                event_type=envelope.type if envelope else None,
                payload=message.value.decode("utf-8", "replace").replace("\x00", "\ufffd"),
                reason=f"{type(exc).__name__}: {exc}"[:2000], created_at=utcnow()))
        self.stats.dead_letters += 1
        log.error("message dead-lettered", extra={
            "consumer": self.name, "event_id": str(envelope.id) if envelope else None})

    async def _database_reachable(self) -> bool:
        try:
            await asyncio.wait_for(self.db.ping(), timeout=5)
            return True
        except Exception:  # noqa: BLE001
            return False


class BatchConsumerRunner(ConsumerRunner):
    """A runner whose handler sees the whole batch: one multi-row inbox insert, one call.

    Every guarantee of ``ConsumerRunner`` holds (one transaction per batch, offsets after it,
    per-message retry and dead letters: ``_one_by_one`` re-enters ``_apply`` with a batch of
    one). For consumers whose per-event statements dominate (scoring loads history for a
    batch at once; reports adds a batch's counters in one upsert).
    """

    def __init__(self, db: Database, bus: Bus, *, name: str, topics_by_type: dict[str, str],
                 batch_handler: BatchHandler, **kwargs: Any) -> None:
        """``topics_by_type``: event type -> topic, the events this consumer applies."""
        async def one(session: AsyncSession, envelope: Envelope, event: Event) -> None:
            await batch_handler(session, [(envelope, event)])   # the per-message form

        super().__init__(db, bus, name=name, handlers={
            t: (topic, one) for t, topic in topics_by_type.items()}, **kwargs)
        self.batch_handler = batch_handler

    async def _apply(self, batch: Sequence[Message]) -> None:
        wanted = [w for m in batch if (w := read(m.value, self.handlers)) is not None]
        async with self.db.transaction() as session:
            new = await first_time_many(session, self.name, [e.id for e, _ in wanted])
            fresh = []
            for envelope, event in wanted:
                if envelope.id in new:
                    new.discard(envelope.id)   # a duplicate inside the batch applies once
                    fresh.append((envelope, event))
            if fresh:
                await self.batch_handler(session, fresh)
        self.stats.applied += len(fresh)
        self.stats.duplicates += len(wanted) - len(fresh)
        if self.after_commit and wrote_events(session):
            self.after_commit()


def _try_decode(raw: bytes) -> Envelope | None:
    try:
        return decode(raw)
    except Exception:  # noqa: BLE001
        return None
