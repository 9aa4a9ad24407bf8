"""Who may read which rows of the views.

Dashboard and admin tokens read everything. A PSC token reads national totals, its own PSC(s)
and the ICBs and sites inside them (plus any ICB or site its scope names); never another
PSC's, ICB's or site's detail, and no regional rows (a region spans several PSCs).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.models import ReportSite
from shared.auth import Principal, Role
from shared.problems import Problem

SITE = ReportSite.__table__


async def allowed_codes(session: AsyncSession, principal: Principal, level: str,
                        code: str | None) -> set[str] | None:
    """Codes this principal may see at `level` (None: all); 403 if `code` is outside them."""
    if principal.role in (Role.ADMIN, Role.DASHBOARD) or level == "national":
        return None
    if level == "region":
        raise Problem(403, "Forbidden", "PSC tokens see national totals and their own PSC only")
    allowed = await _codes(session, principal, level)
    if code is not None and code not in allowed:
        raise Problem(403, "Forbidden", f"{level} {code} is outside this token's scope")
    return allowed


async def _codes(session: AsyncSession, principal: Principal, level: str) -> set[str]:
    if level == "psc":
        return set(principal.pscs)
    column = {"icb": SITE.c.icb_code, "site": SITE.c.site_id}[level]
    inside = or_(SITE.c.psc_code.in_(principal.pscs), SITE.c.icb_code.in_(principal.icbs),
                 SITE.c.site_id.in_(principal.sites))
    found = set((await session.execute(select(column).distinct().where(inside))).scalars())
    return found | (set(principal.icbs) if level == "icb" else set(principal.sites))


def psc_filter(principal: Principal) -> set[str] | None:
    """PSC codes whose detail a principal may read in lists (None: all)."""
    if principal.role in (Role.ADMIN, Role.DASHBOARD):
        return None
    return set(principal.pscs)
