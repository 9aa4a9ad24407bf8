"""Scoring's consumer: ObservationRecorded in, scores, flags and outbox events out.

The shared runner applies a batch message by message; scoring needs the whole batch at once
to load trend history and scale settings in a few queries instead of a few per message. So
``BatchConsumerRunner`` keeps every guarantee of ``ConsumerRunner`` (one transaction per batch,
offsets committed after it, per-message retry and dead letters on failure; ``_one_by_one``
re-enters ``_apply`` with a batch of one) and changes only how a batch is applied: one
multi-row inbox insert, then one batch handler call with the events seen for the first time.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.scoring import score_observations
from shared.bus.base import Message
from shared.consumer import ConsumerRunner, Handler
from shared.dialect import insert_ignore
from shared.events import Envelope, Event, ObservationRecorded, decode, parse, topics
from shared.inbox import INBOX
from shared.outbox import utcnow
from shared.runtime import Runtime

BatchHandler = Callable[[AsyncSession, Sequence[Event]], Awaitable[None]]
NAME = "scoring.observations"


async def apply_observation(session: AsyncSession, _: Envelope, event: Event) -> None:
    """Score one observation (the per-message form of the batch handler)."""
    assert isinstance(event, ObservationRecorded)
    await score_observations(session, [event])


async def apply_observations(session: AsyncSession, events: Sequence[Event]) -> None:
    """Score a batch of observations in arrival order."""
    batch = [e for e in events if isinstance(e, ObservationRecorded)]
    await score_observations(session, batch)


def handlers() -> dict[str, tuple[str, Handler]]:
    return {ObservationRecorded.TYPE: (topics.OBSERVATIONS, apply_observation)}


class BatchConsumerRunner(ConsumerRunner):
    def __init__(self, *args: object, batch_handler: BatchHandler, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batch_handler = batch_handler

    async def _apply(self, batch: Sequence[Message]) -> None:
        decoded = [decode(m.value) for m in batch]
        wanted = [(env, parse(env)) for env in decoded if env.type in self.handlers]
        async with self.db.transaction() as session:
            fresh_ids = await _first_time_many(session, self.name, [e for e, _ in wanted])
            fresh = [event for env, event in wanted if fresh_ids.pop(env.id, None)]
            if fresh:
                await self.batch_handler(session, fresh)
        self.stats.applied += len(fresh)
        self.stats.duplicates += len(wanted) - len(fresh)
        if self.after_commit:
            self.after_commit()


async def _first_time_many(session: AsyncSession, consumer: str,
                           envelopes: Sequence[Envelope]) -> dict[uuid.UUID, bool]:
    """Record a batch in the inbox at once; the ids not seen before (each id once)."""
    ids = list(dict.fromkeys(env.id for env in envelopes))
    if not ids:
        return {}
    dialect = session.get_bind().dialect.name
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": i, "processed_at": now} for i in ids]
    # executemany: SQLAlchemy batches the rows into multi-row INSERTs with one cached plan.
    stmt = insert_ignore(INBOX, dialect).returning(INBOX.c.event_id)
    return {row: True for row in (await session.execute(stmt, rows)).scalars()}


def add_to(runtime: Runtime) -> BatchConsumerRunner:
    """Register the batch consumer with the runtime, as ``runtime.add_consumer`` would."""
    s = runtime.settings
    runner = BatchConsumerRunner(runtime.db, runtime.bus, name=NAME, handlers=handlers(),
                                 batch_size=s.consumer_batch_size,
                                 max_attempts=s.consumer_max_attempts,
                                 after_commit=runtime.relay.wake, batch_handler=apply_observations)
    runtime.consumers.append(runner)
    return runner
