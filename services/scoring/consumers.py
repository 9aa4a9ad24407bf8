"""Scoring's consumer: ObservationRecorded in, scores, flags and outbox events out.

Scoring needs the whole batch at once to load trend history and scale settings in a few
queries instead of a few per message, so it runs on ``shared.consumer.BatchConsumerRunner``
(same guarantees as the per-message runner). An ObservationRecorded envelope is validated
with its event in one pydantic pass (``ObservationRunner.read``); anything that fails it goes
through ``decode`` + ``parse`` and raises as before, so a malformed message still fails its
batch and is dead-lettered alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.scoring import score_observations
from shared.consumer import BatchConsumerRunner
from shared.events import Envelope, Event, ObservationRecorded, topics
from shared.runtime import Runtime

NAME = "scoring.observations"


async def apply_observations(session: AsyncSession,
                             items: Sequence[tuple[Envelope, Event]]) -> None:
    """Score a batch of observations in arrival order."""
    await score_observations(session, [e for _, e in items if isinstance(e, ObservationRecorded)])


TOPICS = {ObservationRecorded.TYPE: topics.OBSERVATIONS}


class _ObservationEnvelope(Envelope):
    data: ObservationRecorded  # type: ignore[assignment]  # validated in the same pass


class ObservationRunner(BatchConsumerRunner):
    def read(self, raw: bytes) -> tuple[Envelope, Event] | None:
        """One pydantic pass reads an ObservationRecorded envelope; anything else takes the
        generic ``decode`` + ``parse`` path, which raises exactly as the shared runner's would.
        """
        try:
            env = _ObservationEnvelope.model_validate_json(raw)
        except ValidationError:
            env = None
        if (env is not None and env.type == ObservationRecorded.TYPE
                and env.type in self.handlers and env.schemaversion <= ObservationRecorded.VERSION):
            return env, env.data
        return super().read(raw)


def add_to(runtime: Runtime) -> BatchConsumerRunner:
    return runtime.add_batch_consumer(NAME, TOPICS, apply_observations, ObservationRunner)
