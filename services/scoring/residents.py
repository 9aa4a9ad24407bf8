"""Per-resident reads and clinical settings: score timeline, SpO2 scale (who, when, why).

Scoring knows a resident's site only from the observations it has scored (``scoring_resident``,
the site of the latest reading by taken-at). Scope is checked against that site; an unknown
resident is 404. The timeline shows only readings taken at sites the caller may see, so a
resident who moved home does not open their old home's records to the new one or vice versa.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Row, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.domain.news2 import RiskBand
from services.scoring.models import RESIDENT, SCORE, SPO2_SCALE, utc
from services.scoring.presenters import score_out
from services.scoring.schemas import ScoreOut, Spo2ScaleOut
from shared.auth import Principal
from shared.outbox import utcnow
from shared.problems import Problem


async def resident_in_scope(session: AsyncSession, resident: str, *, by: Principal) -> None:
    """404 if scoring has never seen the resident (nor a setting naming their site); 403 if
    their site is out of scope."""
    row = await _seen(session, resident)
    if row is not None:
        by.require_site(row.site_id, row.icb_code, row.psc_code)
        return
    named = await _named_site(session, resident)
    if named is None:
        raise Problem(404, "Not Found", "no scored observations for this resident")
    _require_named_site(by, named)


async def _seen(session: AsyncSession, resident: str) -> Row | None:
    """The resident's current site row, if scoring has scored a reading of theirs."""
    return (await session.execute(select(RESIDENT).where(RESIDENT.c.resident == resident))).first()


async def _named_site(session: AsyncSession, resident: str) -> str | None:
    """The site named by the latest setting made before the resident's first reading."""
    return (await session.execute(
        select(SPO2_SCALE.c.site_id).where(SPO2_SCALE.c.resident == resident,
                                           SPO2_SCALE.c.site_id.is_not(None))
        .order_by(SPO2_SCALE.c.set_at.desc(), SPO2_SCALE.c.id.desc()).limit(1))).scalar()


def _require_named_site(by: Principal, site_id: str) -> None:
    """Scope of a site scoring knows only by its id (no reading from it yet, so no ICB or
    PSC): a token naming the site itself, or one that sees every site."""
    if not by.covers_site(site_id, None, None):
        raise Problem(403, "Forbidden", f"site {site_id} is outside this token's scope",
                      errors=[{"field": "site_id", "value": site_id,
                               "reason": "before a resident's first reading only a token "
                                         "naming this site may act for them"}])


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
                        set_at=utc(row.set_at), reason=row.reason, site_id=row.site_id)


async def set_scale(session: AsyncSession, resident: str, scale: int, *, by: Principal,
                    reason: str | None, site_id: str | None = None,
                    now: datetime | None = None) -> Spo2ScaleOut:
    """Record the resident's SpO2 scale from now on (append-only history; flush only).

    A resident scoring has scored is in scope through their site (``site_id`` is then not
    needed and not stored). Before their first reading the caller names the home caring for
    them (``site_id``), in the caller's own scope by id, and the setting records it; once a
    site is named, only a caller covering it may set the scale again (or name another). It
    applies to their readings from any site, as every setting does.
    """
    known = await _seen(session, resident)
    if known is not None:
        by.require_site(known.site_id, known.icb_code, known.psc_code)
        site_id = None
    else:
        named = await _named_site(session, resident)
        if named is not None:
            _require_named_site(by, named)
        site_id = site_id or named
        if site_id is None:
            raise Problem(404, "Not Found", "no scored observations for this resident",
                          errors=[{"field": "site_id", "value": None,
                                   "reason": "before a resident's first reading, name the "
                                             "home caring for them"}])
        _require_named_site(by, site_id)
    await session.execute(insert(SPO2_SCALE).values(
        resident=resident, scale=scale, set_by=by.sub, set_at=now or utcnow(), reason=reason,
        site_id=site_id))
    return await current_scale(session, resident)
