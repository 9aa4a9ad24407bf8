"""Read side of the adoption and transition views: GROUP BY over the maintained facts.

Denominators come from the register copy (sites open at the quarter end, per area), numerators
from ``reports_stage_count`` (counters kept in step with the facts); ``domain.adoption`` turns
the two into rows. Transitions join the facts of two consecutive quarters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.domain.adoption import (
    ALL_TOOLS,
    NATIONAL,
    AdoptionRow,
    Ambitions,
    adoption_row,
)
from services.reports.domain.stages import from_ordinal
from services.reports.domain.transitions import Transitions, summarise
from services.reports.models import ReportSite, StageCount, StageFact, StageRecord

SITE, FACT, RECORD = ReportSite.__table__, StageFact.__table__, StageRecord.__table__
COUNT = StageCount.__table__
EACH_TOOL = "each"


@dataclass(frozen=True)
class Area:
    """Which rows a query wants: a level, optionally one code, optionally limited to `allowed`."""

    level: str
    code: str | None = None
    allowed: Collection[str] | None = None  # None: every code

    def column(self, table):  # noqa: ANN001, ANN201 - a Table; a column expression
        if self.level == "national":
            return literal(NATIONAL)
        return table.c[{"region": "region", "psc": "psc_code", "icb": "icb_code"}[self.level]]

    def keeps(self, code: str) -> bool:
        return ((self.code is None or code == self.code)
                and (self.allowed is None or code in self.allowed))


def open_at(table, day):  # noqa: ANN001, ANN201 - the open-site rule as SQL
    return and_(or_(table.c.opened_on.is_(None), table.c.opened_on <= day),
                or_(table.c.closed_on.is_(None), table.c.closed_on > day))


async def denominators(session: AsyncSession, area: Area, first: int, last: int
                       ) -> dict[int, dict[str, int]]:
    """qn -> code -> sites open at that quarter end; one scan of the register for the range."""
    code = area.column(SITE).label("code")
    quarters = list(range(first, last + 1))
    sums = [func.sum(case((open_at(SITE, from_ordinal(qn).end), 1), else_=0)) for qn in quarters]
    rows = (await session.execute(select(code, *sums).group_by(code))).all()
    out: dict[int, dict[str, int]] = {qn: {} for qn in quarters}
    for c, *counts in rows:
        if area.keeps(c):
            for qn, n in zip(quarters, counts, strict=True):
                if n:
                    out[qn][c] = int(n)
    if area.level == "national":
        for per_code in out.values():
            per_code.setdefault(NATIONAL, 0)   # the national row exists even before any site
    return out


async def numerators(session: AsyncSession, area: Area, programme: str, first: int, last: int
                     ) -> dict[tuple[int, str, str], dict[int, int]]:
    """(qn, code, tool) -> stage -> sites, from the maintained counters; ALL_TOOLS sums tools."""
    stmt = (select(COUNT.c.qn, COUNT.c.code, COUNT.c.tool, COUNT.c.stage, COUNT.c.sites)
            .where(COUNT.c.programme == programme, COUNT.c.level == area.level,
                   COUNT.c.qn.between(first, last), COUNT.c.sites != 0))
    if area.code is not None:
        stmt = stmt.where(COUNT.c.code == area.code)
    out: dict[tuple[int, str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for qn, c, tool, stage, n in (await session.execute(stmt)).all():
        if area.keeps(c):
            out[(qn, c, tool)][stage] += n
            out[(qn, c, ALL_TOOLS)][stage] += n
    return out


async def programmes(session: AsyncSession) -> list[str]:
    stmt = select(RECORD.c.programme).distinct().order_by(RECORD.c.programme)
    return list((await session.execute(stmt)).scalars().all())


async def adoption(session: AsyncSession, *, area: Area, programme: str, first: int, last: int,
                   tool: str, targets: Ambitions, floor: int | None = None) -> list[AdoptionRow]:
    """Rows for quarters first..last; each carries its change from the previous quarter.

    ``floor`` is the first materialised quarter: no change is reported against a quarter
    before it (its facts do not exist).
    """
    lo = first - 1 if floor is None else max(first - 1, floor)
    counts = await numerators(session, area, programme, lo, last)
    dens = await denominators(session, area, lo, last)
    rows: list[AdoptionRow] = []
    previous: dict[tuple[str, str], AdoptionRow] = {}
    for qn in range(lo, last + 1):
        label = from_ordinal(qn).label
        for code, den in sorted(dens[qn].items()):
            for t in _tools(counts, qn, code, tool):
                key = (label, area.level, code, programme, t or "(none)")
                row = adoption_row(key, den, counts.get((qn, code, t), {}), targets,
                                   previous.get((code, t)))
                previous[(code, t)] = row
                if qn >= first:
                    rows.append(row)
    return rows


def _tools(counts: dict, qn: int, code: str, wanted: str) -> list[str]:
    if wanted != EACH_TOOL:
        return [wanted]
    return [ALL_TOOLS] + sorted(t for (q, c, t) in counts if q == qn and c == code
                                and t != ALL_TOOLS)


async def transitions(session: AsyncSession, *, area: Area, programme: str, qn: int,
                      tool: str = ALL_TOOLS) -> dict[str, Transitions]:
    """Per area code: sites open at both quarter ends, by (stage before, stage after); for
    one ``tool``, the sites whose stage in force at the later quarter end names it."""
    cur, prev = aliased(FACT), aliased(FACT)
    code = area.column(SITE).label("code")
    before = func.coalesce(prev.c.stage, 0)
    after = func.coalesce(cur.c.stage, 0)
    stmt = (select(code, before, after, func.count())
            .select_from(SITE)
            .outerjoin(cur, and_(cur.c.site_id == SITE.c.site_id, cur.c.programme == programme,
                                 cur.c.qn == qn))
            .outerjoin(prev, and_(prev.c.site_id == SITE.c.site_id,
                                  prev.c.programme == programme, prev.c.qn == qn - 1))
            .where(open_at(SITE, from_ordinal(qn).end), open_at(SITE, from_ordinal(qn - 1).end))
            .group_by(code, before, after))
    if tool != ALL_TOOLS:
        stmt = stmt.where(cur.c.tool == tool)
    pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for c, b, a, n in (await session.execute(stmt)).all():
        if area.keeps(c):
            pairs[c].extend([(b, a)] * n)
    return {c: summarise(p) for c, p in sorted(pairs.items())}
