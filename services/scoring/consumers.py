"""Scoring's consumer: ObservationRecorded in, scores, flags and outbox events out.

The shared runner applies a batch message by message; scoring needs the whole batch at once
to load trend history and scale settings in a few queries instead of a few per message. So
``BatchConsumerRunner`` keeps every guarantee of ``ConsumerRunner`` (one transaction per batch,
offsets committed after it, per-message retry and dead letters on failure; ``_one_by_one``
re-enters ``_apply`` with a batch of one) and changes only how a batch is applied: one
multi-row inbox insert, then one batch handler call with the events seen for the first time.
An ObservationRecorded envelope is validated with its event in one pydantic pass (``_read``);
anything that fails it goes through ``decode`` + ``parse`` and raises as before, so a
malformed message still fails its batch and is dead-lettered alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.scoring import score_observations
from shared.bus.base import Message
from shared.consumer import ConsumerRunner, Handler
from shared.dialect import insert_rows
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
        wanted = [w for m in batch if (w := _read(m.value, self.handlers)) is not None]
        async with self.db.transaction() as session:
            fresh_ids = await _first_time_many(session, self.name, [i for i, _ in wanted])
            fresh = [event for event_id, event in wanted if fresh_ids.pop(event_id, None)]
            if fresh:
                await self.batch_handler(session, fresh)
        self.stats.applied += len(fresh)
        self.stats.duplicates += len(wanted) - len(fresh)
        if self.after_commit:
            self.after_commit()


class _ObservationEnvelope(Envelope):
    data: ObservationRecorded  # type: ignore[assignment]  # validated in the same pass


def _read(raw: bytes, handlers: dict[str, tuple[str, Handler]]) -> tuple[uuid.UUID, Event] | None:
    """(envelope id, event), or None for a type this consumer ignores; raises if malformed.

    One pydantic pass reads an ObservationRecorded envelope; anything else takes the generic
    ``decode`` + ``parse`` path, which raises exactly as the shared runner's would.
    """
    try:
        env = _ObservationEnvelope.model_validate_json(raw)
    except ValidationError:
        env = None
    if (env is not None and env.type == ObservationRecorded.TYPE and env.type in handlers
            and env.schemaversion <= ObservationRecorded.VERSION):
        return env.id, env.data
    generic = decode(raw)
    return (generic.id, parse(generic)) if generic.type in handlers else None


async def _first_time_many(session: AsyncSession, consumer: str,
                           event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Record a batch in the inbox at once; the ids not seen before (each id once)."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return {}
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": i, "processed_at": now} for i in ids]
    written = await insert_rows(session, INBOX, rows, ignore_conflicts=True, returning="event_id")
    return dict.fromkeys(written, True)


def add_to(runtime: Runtime) -> BatchConsumerRunner:
    """Register the batch consumer with the runtime, as ``runtime.add_consumer`` would."""
    s = runtime.settings
    runner = BatchConsumerRunner(runtime.db, runtime.bus, name=NAME, handlers=handlers(),
                                 batch_size=s.consumer_batch_size,
                                 max_attempts=s.consumer_max_attempts,
                                 after_commit=runtime.relay.wake, batch_handler=apply_observations)
    runtime.consumers.append(runner)
    return runner
