"""Activity by quarter from observation and score events: additive counters per site.

Counters are safe to add to because the inbox applies each event id once; a quarter is the
Europe/London quarter of ``taken_at``. Residents observed are counted distinct through a
(site, quarter, resident pseudonym) set. Area codes come from the events themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.domain.stages import ordinal
from services.reports.models import Activity, ActivityResident
from shared.consumer import Handler
from shared.dialect import insert_ignore
from shared.events import Envelope, Event, topics
from shared.events.observations import ObservationRecorded
from shared.events.scores import DeteriorationFlagged, ScoreComputed
from shared.quarters import Quarter

ACT, RES = Activity.__table__, ActivityResident.__table__
RISK_COLUMNS = {"low": "risk_low", "low-medium": "risk_low_medium", "medium": "risk_medium",
                "high": "risk_high"}


async def _add(session: AsyncSession, event: ObservationRecorded | ScoreComputed |
               DeteriorationFlagged, counts: dict[str, int]) -> None:
    dialect = session.get_bind().dialect.name
    qn = ordinal(Quarter.of_instant(event.taken_at))
    await session.execute(insert_ignore(ACT, dialect).values(
        site_id=event.site_id, qn=qn, icb_code=event.icb_code, psc_code=event.psc_code))
    await session.execute(update(ACT).where(ACT.c.site_id == event.site_id, ACT.c.qn == qn)
                          .values({ACT.c[k]: ACT.c[k] + v for k, v in counts.items()}))


async def on_observation(session: AsyncSession, _: Envelope, event: Event) -> None:
    """One observation set; its resident joins the quarter's distinct residents."""
    assert isinstance(event, ObservationRecorded)
    await _add(session, event, {"observation_sets": 1})
    dialect = session.get_bind().dialect.name
    await session.execute(insert_ignore(RES, dialect).values(
        site_id=event.site_id, qn=ordinal(Quarter.of_instant(event.taken_at)),
        resident=event.resident))


async def on_score(session: AsyncSession, _: Envelope, event: Event) -> None:
    """A scored set: complete or not, its risk band, red score and client-claim mismatch."""
    assert isinstance(event, ScoreComputed)
    counts = {"scored_sets": 1, "complete_sets": int(event.total is not None),
              "red_scores": int(event.red_score), "claim_mismatches": int(event.claim_mismatch)}
    if event.risk in RISK_COLUMNS:
        counts[RISK_COLUMNS[event.risk]] = 1
    await _add(session, event, counts)


async def on_flag(session: AsyncSession, _: Envelope, event: Event) -> None:
    """A deterioration flag raised for a resident of the site."""
    assert isinstance(event, DeteriorationFlagged)
    await _add(session, event, {"flags": 1})


def handlers(touch: Callable[[AsyncSession, Envelope], Awaitable[None]]
             ) -> dict[str, tuple[str, Handler]]:
    def fresh(handler: Handler) -> Handler:
        async def run(session: AsyncSession, envelope: Envelope, event: Event) -> None:
            await handler(session, envelope, event)
            await touch(session, envelope)
        return run

    return {ObservationRecorded.TYPE: (topics.OBSERVATIONS, fresh(on_observation)),
            ScoreComputed.TYPE: (topics.SCORES, fresh(on_score)),
            DeteriorationFlagged.TYPE: (topics.SCORES, fresh(on_flag))}
