"""Open deterioration flags per site, and acknowledging one (who and when).

A site's ICB and PSC, needed for scope checks, come from the residents scoring has seen there;
for a site scoring has never seen, only a token naming the site itself (or admin/dashboard)
passes, and the answer is an empty list.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import FLAG, RESIDENT
from services.scoring.presenters import flag_out
from services.scoring.schemas import FlagOut
from shared.auth import Principal
from shared.outbox import utcnow
from shared.problems import Problem


async def open_flags(session: AsyncSession, site_id: str, *, by: Principal,
                     limit: int) -> list[FlagOut]:
    """The site's unacknowledged flags, most recently taken first."""
    known = (await session.execute(select(RESIDENT.c.icb_code, RESIDENT.c.psc_code)
                                   .where(RESIDENT.c.site_id == site_id).limit(1))).first()
    by.require_site(site_id, known and known.icb_code, known and known.psc_code)
    rows = await session.execute(
        select(FLAG).where(FLAG.c.site_id == site_id, FLAG.c.acknowledged_at.is_(None))
        .order_by(FLAG.c.taken_at.desc()).limit(limit))
    return [flag_out(r) for r in rows]


async def acknowledge(session: AsyncSession, flag_id: uuid.UUID, *, by: Principal) -> FlagOut:
    """Record who acknowledged the flag and when; acknowledging again keeps the first."""
    row = (await session.execute(select(FLAG).where(FLAG.c.flag_id == flag_id))).first()
    if row is None:
        raise Problem(404, "Not Found", f"no flag {flag_id}")
    by.require_site(row.site_id, row.icb_code, row.psc_code)
    if row.acknowledged_at is None:
        await session.execute(update(FLAG).where(FLAG.c.flag_id == flag_id,
                                                 FLAG.c.acknowledged_at.is_(None))
                              .values(acknowledged_at=utcnow(), acknowledged_by=by.sub))
        row = (await session.execute(select(FLAG).where(FLAG.c.flag_id == flag_id))).first()
    return flag_out(row)
