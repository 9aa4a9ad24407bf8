"""Open deterioration flags per site, and acknowledging one (who and when).

A site's ICB and PSC, needed for scope checks, come from the residents scoring has seen there;
for a site scoring has never seen, only a token naming the site itself (or admin/dashboard)
passes, and the answer is an empty list.

A flag withdrawn with its observation set (``withdrawals``) is no longer open: it leaves the
site's list, and acknowledging it is refused (409, naming the withdrawal) once the caller's
scope is checked. Its reason and replacement are its score's (one record of a withdrawal).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Row, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import FLAG, RESIDENT, SCORE
from services.scoring.presenters import flag_out, withdrawal_out
from services.scoring.schemas import FlagOut
from shared.auth import Principal
from shared.outbox import utcnow
from shared.problems import Problem

# A flag with its score's withdrawal reason and replacement (what ``flag_out`` reads).
FLAG_WITH_WITHDRAWAL = (
    select(FLAG, SCORE.c.withdrawal_reason, SCORE.c.replaced_by)
    .select_from(FLAG.outerjoin(SCORE, SCORE.c.observation_id == FLAG.c.observation_id)))


async def open_flags(session: AsyncSession, site_id: str, *, by: Principal,
                     limit: int) -> list[FlagOut]:
    """The site's unacknowledged, unwithdrawn flags, most recently taken first."""
    known = (await session.execute(select(RESIDENT.c.icb_code, RESIDENT.c.psc_code)
                                   .where(RESIDENT.c.site_id == site_id).limit(1))).first()
    by.require_site(site_id, known and known.icb_code, known and known.psc_code)
    rows = await session.execute(
        FLAG_WITH_WITHDRAWAL.where(FLAG.c.site_id == site_id, FLAG.c.acknowledged_at.is_(None),
                                   FLAG.c.withdrawn_at.is_(None))
        .order_by(FLAG.c.taken_at.desc()).limit(limit))
    return [flag_out(r) for r in rows]


async def one(session: AsyncSession, flag_id: uuid.UUID, *, by: Principal) -> FlagOut:
    """A flag in the caller's scope, whatever its state."""
    return flag_out(await _in_scope(session, flag_id, by))


async def acknowledge(session: AsyncSession, flag_id: uuid.UUID, *, by: Principal) -> FlagOut:
    """Record who acknowledged the flag and when; acknowledging again keeps the first. 409 for
    a withdrawn flag."""
    row = await _in_scope(session, flag_id, by)
    if row.withdrawn_at is not None:
        raise _withdrawn(row)
    if row.acknowledged_at is None:
        await session.execute(update(FLAG).where(FLAG.c.flag_id == flag_id,
                                                 FLAG.c.acknowledged_at.is_(None))
                              .values(acknowledged_at=utcnow(), acknowledged_by=by.sub))
        row = await _flag(session, flag_id)
    return flag_out(row)


async def _in_scope(session: AsyncSession, flag_id: uuid.UUID, by: Principal) -> Row:
    """The flag (404 if unknown), once the caller's scope is checked (403)."""
    row = await _flag(session, flag_id)
    if row is None:
        raise Problem(404, "Not Found", f"no flag {flag_id}")
    by.require_site(row.site_id, row.icb_code, row.psc_code)
    return row


async def _flag(session: AsyncSession, flag_id: uuid.UUID) -> Row | None:
    return (await session.execute(FLAG_WITH_WITHDRAWAL.where(FLAG.c.flag_id == flag_id))).first()


def _withdrawn(row: Row) -> Problem:
    w = withdrawal_out(row)
    assert w is not None
    replaced = f", replaced by set {w.replaced_by}" if w.replaced_by else ""
    return Problem(409, "Conflict",
                   f"flag {row.flag_id} was withdrawn at {w.withdrawn_at.isoformat()} with its "
                   f"observation set ({w.reason}{replaced}); it cannot be acknowledged",
                   errors=[{"field": "flag_id", "value": str(row.flag_id),
                            "reason": f"withdrawn with its observation set ({w.reason})"}],
                   withdrawal=w.model_dump(mode="json"))
