"""Per-resident reads and clinical settings: score timeline, SpO2 scale (who, when, why).

Scoring knows a resident's site only from the observations it has scored (``scoring_resident``,
the site of the latest reading by taken-at). Scope is checked against that site; an unknown
resident is 404. The timeline shows only readings taken at sites the caller may see, so a
resident who moved home does not open their old home's records to the new one or vice versa.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.domain.news2 import RiskBand
from services.scoring.models import RESIDENT, SCORE, SPO2_SCALE, utc
from services.scoring.presenters import score_out
from services.scoring.schemas import ScoreOut, Spo2ScaleOut
from shared.auth import Principal
from shared.outbox import utcnow
from shared.problems import Problem


async def resident_in_scope(session: AsyncSession, resident: str, *, by: Principal) -> None:
    """404 if scoring has never seen the resident; 403 if their site is out of scope."""
    row = (await session.execute(select(RESIDENT).where(RESIDENT.c.resident == resident))).first()
    if row is None:
        raise Problem(404, "Not Found", "no scored observations for this resident")
    by.require_site(row.site_id, row.icb_code, row.psc_code)


async def timeline(session: AsyncSession, resident: str, *, by: Principal, limit: int,
                   wording: Mapping[RiskBand, str]) -> list[ScoreOut]:
    """The resident's scores, newest taken first, limited to sites in the caller's scope."""
    await resident_in_scope(session, resident, by=by)
    rows = await session.execute(
        select(SCORE).where(SCORE.c.resident == resident)
        .order_by(SCORE.c.taken_at.desc(), SCORE.c.received_at.desc()).limit(limit))
    return [score_out(r, wording) for r in rows
            if by.covers_site(r.site_id, r.icb_code, r.psc_code)]


async def current_scale(session: AsyncSession, resident: str) -> Spo2ScaleOut:
    row = (await session.execute(
        select(SPO2_SCALE).where(SPO2_SCALE.c.resident == resident)
        .order_by(SPO2_SCALE.c.set_at.desc(), SPO2_SCALE.c.id.desc()).limit(1))).first()
    if row is None:
        return Spo2ScaleOut(resident=resident, scale=1, set_by=None, set_at=None, reason=None)
    return Spo2ScaleOut(resident=resident, scale=row.scale, set_by=row.set_by,
                        set_at=utc(row.set_at), reason=row.reason)


async def set_scale(session: AsyncSession, resident: str, scale: int, *, by: Principal,
                    reason: str | None, now: datetime | None = None) -> Spo2ScaleOut:
    """Record the resident's SpO2 scale from now on (append-only history; flush only)."""
    await resident_in_scope(session, resident, by=by)
    await session.execute(insert(SPO2_SCALE).values(
        resident=resident, scale=scale, set_by=by.sub, set_at=now or utcnow(), reason=reason))
    return await current_scale(session, resident)
