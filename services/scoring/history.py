"""Everything a batch of observations needs from the database, in four queries (no N+1).

For a batch whose readings were taken between ``lo`` and ``hi``, a reading's previous score
(the latest complete score taken strictly before it) is either
- a complete score of that resident taken in ``[lo, hi)``, or
- the resident's latest complete score taken before ``lo`` (all rows at that instant, because
  the trend rule breaks ties itself), or
- an earlier reading of the same batch (the handler adds those as it goes).
So loading those two sets per resident is exact, whatever the arrival order.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.domain.assessment import ScaleSetting
from services.scoring.domain.news2 import RiskBand
from services.scoring.domain.trend import ScoredObservation
from services.scoring.models import RESIDENT, SCORE, SPO2_SCALE, utc
from shared.dialect import in_values

Who = Callable[[Any], Any]  # column -> "column is one of the batch's residents"
_BAND = {band.value: band for band in RiskBand}  # RiskBand(text) without the enum call


@dataclass
class BatchContext:
    scored: set[uuid.UUID] = field(default_factory=set)  # observations already stored
    scales: dict[str, list[ScaleSetting]] = field(default_factory=dict)
    history: dict[str, list[ScoredObservation]] = field(default_factory=lambda: defaultdict(list))


async def load_context(session: AsyncSession, *, observation_ids: Iterable[uuid.UUID],
                       residents: set[str], lo: datetime, hi: datetime) -> BatchContext:
    """Existing scores, scale settings and trend history for one batch."""
    ctx, dialect = BatchContext(), session.get_bind().dialect.name
    found = await session.execute(select(SCORE.c.observation_id).where(
        in_values(SCORE.c.observation_id, observation_ids, dialect)))
    ctx.scored = set(found.scalars())
    who = functools.partial(in_values, values=residents, dialect_name=dialect)
    ctx.scales = await _scales(session, who)
    history, band = ctx.history, _BAND
    for resident, taken_at, total, risk in (await _window(session, who, lo, hi)
                                            + await _before(session, who, lo)):
        history[resident].append(ScoredObservation(utc(taken_at), total, band[risk]))
    return ctx


async def _scales(session: AsyncSession, who: Who) -> dict[str, list[ScaleSetting]]:
    rows = await session.execute(
        select(SPO2_SCALE).where(who(SPO2_SCALE.c.resident))
        .order_by(SPO2_SCALE.c.resident, SPO2_SCALE.c.set_at, SPO2_SCALE.c.id))
    out: dict[str, list[ScaleSetting]] = defaultdict(list)
    for r in rows:
        out[r.resident].append(ScaleSetting(r.scale, r.set_by, utc(r.set_at)))
    return out


def _complete():  # type: ignore[no-untyped-def]
    return select(SCORE.c.resident, SCORE.c.taken_at, SCORE.c.total, SCORE.c.risk).where(
        SCORE.c.total.is_not(None))


async def _window(session: AsyncSession, who: Who, lo: datetime,
                  hi: datetime) -> list:  # type: ignore[type-arg]
    stmt = _complete().where(who(SCORE.c.resident), SCORE.c.taken_at >= lo,
                             SCORE.c.taken_at < hi)
    return list(await session.execute(stmt))


async def _before(session: AsyncSession, who: Who,
                  lo: datetime) -> list:  # type: ignore[type-arg]
    """Each resident's latest complete score before ``lo``, whatever its age (band rule)."""
    prev = SCORE.alias("prev")
    latest = (select(func.max(prev.c.taken_at))
              .where(prev.c.resident == RESIDENT.c.resident, prev.c.total.is_not(None),
                     prev.c.taken_at < lo)
              .scalar_subquery())
    per = (select(RESIDENT.c.resident, latest.label("at"))
           .where(who(RESIDENT.c.resident)).subquery())
    stmt = _complete().join(per, and_(SCORE.c.resident == per.c.resident,
                                      SCORE.c.taken_at == per.c.at))
    return list(await session.execute(stmt))
