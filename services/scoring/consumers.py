"""Scoring's consumer: ObservationRecorded and ObservationSetWithdrawn in; scores, flags,
their withdrawals and outbox events out.

Scoring needs the whole batch at once to load trend history and scale settings in a few
queries instead of a few per message, so it runs on ``shared.consumer.BatchConsumerRunner``
(same guarantees as the per-message runner). A batch is applied in arrival order: each run
of consecutive recorded sets is scored at once (``scoring``), each run of withdrawals applied
after the sets before it (``withdrawals``), so a set recorded and withdrawn in one batch is
scored, then withdrawn. A malformed message fails its batch and is dead-lettered alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from itertools import groupby
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.scoring import score_observations
from services.scoring.withdrawals import withdraw_observations
from shared.consumer import BatchConsumerRunner
from shared.events import Envelope, Event, ObservationRecorded, ObservationSetWithdrawn
from shared.runtime import Runtime

NAME = "scoring.observations"


_APPLY: dict[type[Event], Callable[[AsyncSession, Any], Awaitable[None]]] = {
    ObservationRecorded: score_observations, ObservationSetWithdrawn: withdraw_observations}
TOPICS = {cls.TYPE: cls.TOPIC for cls in _APPLY}


async def apply_observations(session: AsyncSession,
                             items: Sequence[tuple[Envelope, Event]]) -> None:
    """Apply a batch in arrival order, one handler call per run of events of one type."""
    for cls, run in groupby((e for _, e in items), key=type):
        await _APPLY[cls](session, list(run))


def add_to(runtime: Runtime) -> BatchConsumerRunner:
    return runtime.add_batch_consumer(NAME, TOPICS, apply_observations)
