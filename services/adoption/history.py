"""Read side of stages: a site's history, a PSC's positions on a day, the flagged reports.

History is ordered by the date each report applies from (then by when it was reported), so a
correction sits where it applies, not where it arrived. A position is the record in force on a
day (``stage_in_force``); a site with none is at stage 0 with no tool.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.adoption.domain.stages import stage_in_force
from services.adoption.models import Icb, Site, StageReport
from services.adoption.sites import in_scope
from services.adoption.submissions import as_record
from shared.auth import Principal
from shared.problems import Problem


@dataclass(frozen=True)
class Position:
    site: Site
    programme: str
    tool: str | None
    stage: int
    applies_from: date | None


def _chronological():  # noqa: ANN202 - a tuple of order-by clauses
    return (col(StageReport.applies_from), col(StageReport.reported_at), col(StageReport.id))


async def site_history(session: AsyncSession, site_id: str, *,
                       programme: str | None = None) -> list[StageReport]:
    """Every accepted report for a site, by applies-from date."""
    query = select(StageReport).where(StageReport.site_id == site_id)
    if programme:
        query = query.where(StageReport.programme == programme)
    return list((await session.exec(query.order_by(*_chronological()))).all())


def open_during(site: Site, start: date, end: date) -> bool:
    opened = site.opened_on is None or site.opened_on <= end
    return opened and (site.closed_on is None or site.closed_on > start)


async def positions(session: AsyncSession, psc: str, programme: str, *, start: date,
                    on: date) -> list[Position]:
    """Sites of a PSC open at any time from `start` to `on`, each with its stage on `on`."""
    sites = (await session.exec(select(Site).where(Site.psc_code == psc)
                                .order_by(Site.site_id))).all()
    query = (select(StageReport).join(Site).where(Site.psc_code == psc)
             .where(StageReport.programme == programme).order_by(col(StageReport.id)))
    histories = defaultdict(list)
    for report in (await session.exec(query)).all():
        histories[report.site_id].append(as_record(report))
    return [_position(site, programme, histories[site.site_id], on)
            for site in sites if open_during(site, start, on)]


def _position(site: Site, programme: str, history: list, on: date) -> Position:
    record = stage_in_force(history, on)
    if record is None:
        return Position(site, programme, None, 0, None)
    return Position(site, programme, record.tool, record.stage, record.applies_from)


async def flagged(session: AsyncSession, *, by: Principal, psc: str | None,
                  flag: str | None, limit: int, offset: int) -> list[StageReport]:
    """Reports carrying any flag (or the one named), newest applies-from first, in scope."""
    # Only these can carry a flag (regression, stage 7 claim, correction): narrows the scan.
    maybe = or_(col(StageReport.is_correction), col(StageReport.stage) < StageReport.from_stage,
                col(StageReport.stage) == 7)
    query = in_scope(select(StageReport).join(Site).where(maybe), by)  # type: ignore[arg-type]
    if psc:
        query = query.where(Site.psc_code == psc)
    rows = (await session.exec(query.order_by(*(c.desc() for c in _chronological())))).all()
    hits = [r for r in rows if r.flags and (flag is None or flag in r.flags)]
    return hits[offset:offset + limit]


async def require_psc(session: AsyncSession, psc: str, *, by: Principal) -> None:
    """404 for a PSC code no ICB names; 403 unless the caller covers the whole PSC."""
    if (await session.exec(select(Icb.code).where(Icb.psc_code == psc).limit(1))).first() is None:
        raise Problem(404, "Not Found", f"no PSC with code {psc}")
    if not by.covers_site("", None, psc):
        raise Problem(403, "Forbidden", f"PSC {psc} is outside this token's scope")
