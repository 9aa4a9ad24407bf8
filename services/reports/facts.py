"""``reports_stage_fact``: the stage in force at each quarter end, per site (shared parts).

Invariant: for every registered site and programme, the facts for quarters ``first_qn`` to
the horizon are exactly ``domain.stages.quarter_facts`` over the site's full stage history and
its register row, whatever order the events arrived in (``upkeep`` keeps it so per
transaction; ``rebuild`` derives it all at once). The horizon is the current quarter by the
clock; when the clock enters a new quarter the next transaction extends every series to it.
``reports_stage_count`` moves with the facts in the same transaction (counter deltas of the
facts removed and added), so counts always equal a GROUP BY of the facts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.domain.stages import StagePoint, ordinal
from services.reports.models import Freshness, ReportSite, StageCount, StageFact, StageRecord
from shared.events import Envelope
from shared.quarters import Quarter

SITE, RECORD, FACT, FRESH = (ReportSite.__table__, StageRecord.__table__, StageFact.__table__,
                             Freshness.__table__)
COUNT = StageCount.__table__
COUNT_KEY = ["programme", "qn", "level", "code", "tool", "stage"]


@dataclass
class Horizon:
    """Which quarters the facts cover: first_qn (settings) up to the clock's quarter.

    ``seen`` caches a horizon *read* from the database (never one written in a transaction
    that might still roll back): the stored horizon only grows, so while the clock's quarter
    is not past it, no read is needed.
    """

    first_qn: int
    clock: Callable[[], datetime]
    seen: int | None = None

    @classmethod
    def of(cls, first_quarter: str, clock: Callable[[], datetime] | None = None) -> Horizon:
        return cls(ordinal(Quarter.parse(first_quarter)), clock or (lambda: datetime.now(UTC)))

    def current_qn(self) -> int:
        return max(self.first_qn, ordinal(Quarter.of_instant(self.clock())))

    def start_for(self, applies_from: date) -> int:
        return max(self.first_qn, ordinal(Quarter.of_date(applies_from)))


async def touch_horizon(session: AsyncSession, qn: int) -> None:
    """Set the stored horizon (the rebuild derives every quarter up to it at once)."""
    await _ensure_row(session)
    await session.execute(update(FRESH).where(FRESH.c.id == 1).values(horizon_qn=qn))


async def stamp_views(session: AsyncSession) -> None:
    """The register, the history or the facts changed: readers' caches get a new key."""
    await _ensure_row(session)
    await session.execute(update(FRESH).where(FRESH.c.id == 1).values(views_stamp=new_stamp()))


def new_stamp() -> str:
    return uuid.uuid4().hex


async def _ensure_row(session: AsyncSession) -> None:
    exists = (await session.execute(select(FRESH.c.id).where(FRESH.c.id == 1))).first()
    if exists is None:
        await session.execute(insert(FRESH).values(id=1))


async def touch(session: AsyncSession, envelope: Envelope) -> None:
    """Remember the last event applied (freshness metadata on every response)."""
    values = {"event_id": str(envelope.id), "event_type": envelope.type,
              "event_time": envelope.time, "applied_at": datetime.now(UTC)}
    conn = await session.connection()
    done = await conn.execute(update(FRESH).where(FRESH.c.id == 1).values(**values))
    if done.rowcount == 0:
        await conn.execute(insert(FRESH).values(id=1, **values))


def points(rows: Iterable[tuple]) -> list[StagePoint]:
    """(applies_from, reported_at, tool, stage, event_id) rows as domain values."""
    return [StagePoint(a, _aware(r), tool, stage, str(eid)) for a, r, tool, stage, eid in rows]


def _aware(instant: datetime) -> datetime:
    # SQLite hands back naive datetimes for values stored as UTC.
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def fact_row(site, programme: str, fact) -> dict:  # noqa: ANN001 - a Row and a QuarterFact
    return {"site_id": site.site_id, "programme": programme, "qn": fact.qn, "tool": fact.tool,
            "stage": fact.stage, "icb_code": site.icb_code, "psc_code": site.psc_code,
            "region": site.region}
