"""Read side of the activity and data-quality views.

Activity rolls the per-site counters up to ICB, PSC or national at query time (a few thousand
rows per quarter at most), by the register's current area codes, as the adoption views do
(``AREA``): the codes a site's events carried can differ (a site that moved, a stale copy in
ingest), and which of them a row kept depends on arrival order, so only a site the register
copy does not hold yet falls back to them. A resident counts as observed in a site and
quarter only while a set of theirs there stands (``sets`` > 0; see ``activity``), and a row
whose counters and residents all net to 0 (everything it counted withdrawn) is left out, as if
never recorded.
Data quality joins the stage facts with the activity counters: sites at stage >= 5 with no
observations, sites with observations below stage 4, and PSCs whose latest return is older
than the quarter.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import and_, func, literal, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.activity import ACT, COUNTERS, RES
from services.reports.domain.adoption import NATIONAL, percent
from services.reports.domain.stages import from_ordinal
from services.reports.models import ReportSite, StageFact, StageRecord
from shared.dialect import aware
from shared.quarters import local_date

FACT, SITE, RECORD = StageFact.__table__, ReportSite.__table__, StageRecord.__table__


ICB, PSC = (func.coalesce(SITE.c.icb_code, ACT.c.icb_code),
            func.coalesce(SITE.c.psc_code, ACT.c.psc_code))   # the register's, else the events'
AREA = ACT.outerjoin(SITE, SITE.c.site_id == ACT.c.site_id)


def _code(level: str):  # noqa: ANN202
    return {"national": literal(NATIONAL), "site": ACT.c.site_id, "icb": ICB,
            "psc": PSC}[level]


async def activity(session: AsyncSession, *, level: str, first: int, last: int,
                   keep: Collection[str] | None, code: str | None) -> list[dict]:
    """Rows per (quarter, code) with counters, residents observed and complete-set share."""
    c = _code(level).label("code")
    stmt = (select(ACT.c.qn, c, *(func.sum(ACT.c[k]) for k in COUNTERS)).select_from(AREA)
            .where(ACT.c.qn.between(first, last)).group_by(ACT.c.qn, c))
    res_stmt = (select(ACT.c.qn, c, func.count())
                .select_from(RES.join(AREA, and_(RES.c.site_id == ACT.c.site_id,
                                                 RES.c.qn == ACT.c.qn)))
                .where(ACT.c.qn.between(first, last), RES.c.sets > 0)
                .group_by(ACT.c.qn, c))
    residents = {(q, k): n for q, k, n in (await session.execute(res_stmt)).all()}
    rows = []
    for qn, k, *sums in (await session.execute(stmt)).all():
        observed = residents.get((qn, k), 0)
        if (code is None or k == code) and (keep is None or k in keep) and (
                observed or any(sums)):
            rows.append(_activity_row(qn, level, k, dict(zip(COUNTERS, map(int, sums),
                                                             strict=True)), observed))
    return sorted(rows, key=lambda r: (r["qn"], r["code"]))


def _activity_row(qn: int, level: str, code: str, n: dict[str, int], residents: int) -> dict:
    share = percent(n["complete_sets"], n["scored_sets"])
    return {"qn": qn, "quarter": from_ordinal(qn).label, "level": level, "code": code,
            "observation_sets": n["observation_sets"], "residents_observed": residents,
            "complete_news2": {"numerator": n["complete_sets"], "denominator": n["scored_sets"],
                               "percent": share},
            "risk": {"low": n["risk_low"], "low-medium": n["risk_low_medium"],
                     "medium": n["risk_medium"], "high": n["risk_high"]},
            "red_scores": n["red_scores"], "flags": n["flags"],
            "claim_mismatches": n["claim_mismatches"]}


async def quality(session: AsyncSession, *, programme: str, qn: int,
                  keep_psc: Collection[str] | None) -> dict:
    """The three data-quality lists for one quarter and programme."""
    observed = func.coalesce(ACT.c.observation_sets, 0)
    high = (select(FACT.c.site_id, FACT.c.stage, FACT.c.icb_code, FACT.c.psc_code)
            .select_from(FACT.outerjoin(ACT, and_(ACT.c.site_id == FACT.c.site_id,
                                                  ACT.c.qn == FACT.c.qn)))
            .where(FACT.c.programme == programme, FACT.c.qn == qn, FACT.c.stage >= 5,
                   observed == 0).order_by(FACT.c.site_id))
    stage = func.coalesce(FACT.c.stage, 0)
    low = (select(ACT.c.site_id, stage, ICB, PSC, ACT.c.observation_sets)
           .select_from(AREA.outerjoin(FACT, and_(FACT.c.site_id == ACT.c.site_id,
                                                  FACT.c.qn == ACT.c.qn,
                                                  FACT.c.programme == programme)))
           .where(ACT.c.qn == qn, ACT.c.observation_sets > 0, stage < 4)
           .order_by(ACT.c.site_id))

    def kept(psc: str) -> bool:
        return keep_psc is None or psc in keep_psc

    return {
        "stage5_without_observations": [
            {"site_id": s, "stage": st, "icb_code": i, "psc_code": p}
            for s, st, i, p in (await session.execute(high)).all() if kept(p)],
        "observations_below_stage4": [
            {"site_id": s, "stage": st, "icb_code": i, "psc_code": p, "observation_sets": n}
            for s, st, i, p, n in (await session.execute(low)).all() if kept(p)],
        "stale_pscs": [row for row in await _stale_pscs(session, programme, qn)
                       if kept(row["psc_code"])],
    }


async def _stale_pscs(session: AsyncSession, programme: str, qn: int) -> list[dict]:
    start = from_ordinal(qn).start
    latest = dict((await session.execute(
        select(RECORD.c.psc_code, func.max(RECORD.c.reported_at))
        .where(RECORD.c.programme == programme).group_by(RECORD.c.psc_code))).all())
    pscs = (await session.execute(select(SITE.c.psc_code).distinct())).scalars().all()
    out = []
    for psc in sorted(set(pscs) | set(latest)):
        last = latest.get(psc)
        last_day = None if last is None else local_date(aware(last))
        if last_day is None or last_day < start:
            out.append({"psc_code": psc, "latest_return": last_day})
    return out
