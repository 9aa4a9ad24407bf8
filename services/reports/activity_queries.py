"""Read side of the activity and data-quality views.

Activity reads the roll-ups ``activity`` keeps per quarter and area (national, ICB, PSC) by
the register's codes, of all tools or of one (programme, tool), or the site rows for site
level: a view reads a row per quarter and area, never every site (for one tool at site level,
the site rows whose stage in force names it, joined with the stage facts).
A resident counts as observed in a site and quarter only while a set of theirs there stands
(``residents``; see ``activity``), and a row whose counters and residents all net to 0
(everything it counted withdrawn, or moved to another area) is left out, as if never
recorded.
Data quality: sites at stage >= 5 with no observations, sites with observations below stage
4 (the stage facts joined with the activity counters), and PSCs whose latest return is older
than the quarter. The site lists are read from the rows ``quality`` keeps of them where it
keeps them (quarters with activity, programmes with returns), else joined. They name sites,
not how many sets each has (``/activity`` at site level counts them): so they change only
when a site's observations in the quarter start or end, and the API keeps them cached while
readings land at sites already observed. A list is read as its count and one page in site
order (nationally one names thousands of sites); the stale PSCs derive from the returns and
the register only, not from activity.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

from sqlalchemy import Select, and_, bindparam, exists, func, select, true
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.activity import ACT, AREA, ROLLED, TOOL
from services.reports.domain.adoption import ALL_TOOLS, percent
from services.reports.domain.stages import from_ordinal
from services.reports.models import ActivityQuarter, LatestReturn, ReportSite, StageFact
from services.reports.quality import COUNTED, HIGH, ITEM, LISTED, LOW
from shared.dialect import aware
from shared.quarters import local_date

FACT, SITE, LATEST = StageFact.__table__, ReportSite.__table__, LatestReturn.__table__
QUARTER = ActivityQuarter.__table__


async def activity(session: AsyncSession, *, level: str, first: int, last: int,
                   keep: Collection[str] | None, code: str | None,
                   programme: str | None = None, tool: str = ALL_TOOLS) -> list[dict]:
    """Rows per (quarter, code) with counters, residents observed and complete-set share,
    in (quarter, code) order. One ``tool`` (with its ``programme``): the sites whose stage
    in force at the quarter's end in that programme names it, summed from their site rows
    (a site never reported names none); each row then says which programme and tool."""
    if tool == ALL_TOOLS:
        stmt, named = _rolled_up(level, first, last, code), {}
    elif programme is None:
        raise ValueError("one tool needs its programme")
    else:
        stmt, named = (_by_tool(level, first, last, code, programme, tool),
                       {"programme": programme, "tool": tool})
    labels = {qn: from_ordinal(qn).label for qn in range(first, last + 1)}
    return [_activity_row(row, labels[row[0]], level, named)
            for row in await session.execute(stmt)
            if (keep is None or row[1] in keep) and any(row[2:])]


def _rolled_up(level: str, first: int, last: int, code: str | None) -> Select:
    """(qn, code, *ROLLED) from the area roll-ups, or the site rows for site level."""
    if level == "site":
        table, column, where = ACT, ACT.c.site_id, [ACT.c.qn.between(first, last)]
    else:
        table, column = AREA, AREA.c.code
        where = [AREA.c.level == level, AREA.c.qn.between(first, last)]
    if code is not None:
        where.append(column == code)
    return (select(table.c.qn, column, *(table.c[c] for c in ROLLED)).where(*where)
            .order_by(table.c.qn, column))


def _by_tool(level: str, first: int, last: int, code: str | None, programme: str,
             tool: str) -> Select:
    """(qn, code, *ROLLED) for one tool: its roll-ups, or for site level the site rows
    joined with the stage facts of their quarter (by the site rows' codes, as the
    roll-ups)."""
    if level != "site":
        where = [TOOL.c.programme == programme, TOOL.c.tool == tool, TOOL.c.level == level,
                 TOOL.c.qn.between(first, last)]
        if code is not None:
            where.append(TOOL.c.code == code)
        return (select(TOOL.c.qn, TOOL.c.code, *(TOOL.c[c] for c in ROLLED)).where(*where)
                .order_by(TOOL.c.qn, TOOL.c.code))
    stmt = (select(ACT.c.qn, ACT.c.site_id, *(ACT.c[c] for c in ROLLED))
            .join(FACT, and_(FACT.c.site_id == ACT.c.site_id, FACT.c.qn == ACT.c.qn))
            .where(FACT.c.programme == programme, FACT.c.tool == tool,
                   ACT.c.qn.between(first, last), FACT.c.qn.between(first, last)))
    if code is not None:
        stmt = stmt.where(ACT.c.site_id == code)
    return stmt.order_by(ACT.c.qn, ACT.c.site_id)


def _activity_row(row: Sequence, label: str, level: str, named: dict) -> dict:
    """(qn, code, *ROLLED) as the view's row, ``named`` (programme and tool) after its code."""
    (qn, code, observed, scored, complete, low, low_medium, medium, high, red, flags,
     mismatches, residents) = row
    return {"qn": qn, "quarter": label, "level": level, "code": code, **named,
            "observation_sets": observed, "residents_observed": residents,
            "complete_news2": {"numerator": complete, "denominator": scored,
                               "percent": percent(complete, scored)},
            "risk": {"low": low, "low-medium": low_medium, "medium": medium, "high": high},
            "red_scores": red, "flags": flags, "claim_mismatches": mismatches}


COLUMN = {"region": "region", "psc": "psc_code", "icb": "icb_code"}   # level -> site column


SITE_CHECKS = (HIGH, LOW)   # the lists of sites (``quality``), then of PSCs
CHECKS = (*SITE_CHECKS, "stale_pscs")


class Page(NamedTuple):
    """Which items of each list: ``limit`` of them (None: every one) after the first
    ``offset``, in the list's order (site id, or PSC code)."""

    limit: int | None = None
    offset: int = 0


EVERY = Page()


async def quality(session: AsyncSession, *, programme: str, qn: int,
                  keep_psc: Collection[str] | None,
                  area: tuple[str, str] | None = None, tool: str = ALL_TOOLS,
                  checks: Collection[str] = CHECKS, page: Page = EVERY, joined: bool = False
                  ) -> dict[str, tuple[int, list[dict]]]:
    """The data-quality lists for one quarter and programme, each check in ``checks`` as
    (how many items it lists, the ``page`` of them: by default every one); ``area`` (level,
    code) keeps the sites and PSCs of one region, PSC or ICB (by the register's codes, as
    the other views count them); ``tool`` keeps the sites whose stage in force names it (a
    site never reported names none), not the PSCs (a return covers every tool);
    ``keep_psc`` keeps the sites and PSCs of those PSCs (a PSC token's scope). The site
    lists are read from their kept rows (``quality``) where they are kept, else (or with
    ``joined``: their definition, which the tests hold the kept rows to) from the facts
    joined with the activity rows."""
    found = {}
    sited = [check for check in SITE_CHECKS if check in checks]
    if sited:
        scope = {"programme": programme, "qn": qn, "keep_psc": keep_psc, "area": area,
                 "tool": tool, "page": page}
        kept = None if joined else await _kept_lists(session, sited, **scope)
        found = kept if kept is not None else await _joined_lists(session, sited, **scope)
    if "stale_pscs" in checks:
        candidates = None
        if area is not None:
            column, code = COLUMN[area[0]], area[1]
            candidates = {code} if area[0] == "psc" else set((await session.execute(
                select(SITE.c.psc_code).distinct().where(SITE.c[column] == code))).scalars())
        stale = [row for row in await _stale_pscs(session, programme, qn, candidates)
                 if keep_psc is None or row["psc_code"] in keep_psc]
        end = None if page.limit is None else page.offset + page.limit
        found["stale_pscs"] = (len(stale), stale[page.offset:end])
    return found


async def _kept_lists(session: AsyncSession, checks: Sequence[str], *, programme: str,
                      qn: int, keep_psc: Collection[str] | None, area: tuple[str, str] | None,
                      tool: str, page: Page) -> dict[str, tuple[int, list[dict]]] | None:
    """The lists from their kept rows, or None if they are not kept (``quality``). Nationally
    one statement a list, built once (building it cost more than running it): the kept
    count, whether the list is kept, and a range of the key in site order. In a scope, the
    scope's rows counted and paged (``_sites``)."""
    values = {"programme": programme, "qn": qn}
    if tool == ALL_TOOLS and keep_psc is None and area is None:
        stmt = NATIONAL_EVERY if page.limit is None else NATIONAL_PAGE
        found = {}
        for check in checks:
            rows = (await session.execute(stmt, {**values, "kind": check, "limit": page.limit,
                                                 "offset": page.offset})).all()
            if not rows[0][1]:
                return None
            found[check] = _items([(n, *site) for n, _, *site in rows])
        return found
    if not (await session.execute(KEPT, values)).scalar():
        return None

    def listed(kind: str) -> Select:
        where = [LISTED.c.programme == programme, LISTED.c.qn == qn, LISTED.c.kind == kind]
        if tool != ALL_TOOLS:
            where.append(LISTED.c.tool == tool)
        if keep_psc is not None:
            where.append(LISTED.c.psc_code.in_(keep_psc))
        if area is not None:
            where.append(LISTED.c[COLUMN[area[0]]] == area[1])
        return select(*(LISTED.c[c] for c in ITEM)).where(*where)
    return {check: await _sites(session, listed(check), page) for check in checks}


async def _joined_lists(session: AsyncSession, checks: Sequence[str], *, programme: str,
                        qn: int, keep_psc: Collection[str] | None,
                        area: tuple[str, str] | None, tool: str, page: Page
                        ) -> dict[str, tuple[int, list[dict]]]:
    """The lists as the facts joined with the activity rows (what ``quality`` keeps)."""
    observed = func.coalesce(ACT.c.observation_sets, 0)
    high = (select(FACT.c.site_id, FACT.c.stage, FACT.c.icb_code, FACT.c.psc_code)
            .select_from(FACT.outerjoin(ACT, and_(ACT.c.site_id == FACT.c.site_id,
                                                  ACT.c.qn == FACT.c.qn)))
            .where(FACT.c.programme == programme, FACT.c.qn == qn, FACT.c.stage >= 5,
                   observed <= 0))
    stage = func.coalesce(FACT.c.stage, 0)
    low = (select(ACT.c.site_id, stage.label("stage"), ACT.c.icb_code, ACT.c.psc_code)
           .select_from(ACT.outerjoin(FACT, and_(FACT.c.site_id == ACT.c.site_id,
                                                  FACT.c.qn == ACT.c.qn,
                                                  FACT.c.programme == programme)))
           .where(ACT.c.qn == qn, ACT.c.observation_sets > 0, stage < 4))
    if tool != ALL_TOOLS:
        high, low = high.where(FACT.c.tool == tool), low.where(FACT.c.tool == tool)
    if keep_psc is not None:
        high = high.where(FACT.c.psc_code.in_(keep_psc))
        low = low.where(ACT.c.psc_code.in_(keep_psc))
    if area is not None:
        column, code = COLUMN[area[0]], area[1]
        high = high.where(FACT.c[column] == code)
        low = low.where(ACT.c[column] == code if column in ACT.c else ACT.c.site_id.in_(
            select(SITE.c.site_id).where(SITE.c[column] == code)))
    stmts = {HIGH: high, LOW: low}
    return {check: await _sites(session, stmts[check], page) for check in checks}


async def _sites(session: AsyncSession, stmt: Select, page: Page) -> tuple[int, list[dict]]:
    """(how many sites ``stmt`` selects, the page of them in site-id order as items), in one
    statement: the list once (a common table, read twice, so PostgreSQL materialises it),
    its count, and the page sorted from it. Not ``stmt ORDER BY site_id LIMIT``: for that
    PostgreSQL walks the facts' primary key in site order, expecting matches soon, and a list
    that is short or empty then costs a scan of every quarter's facts (36 ms nationally)."""
    listed = stmt.cte("listed")
    return _items((await session.execute(_counted_page(
        select(func.count().label("n")).select_from(listed), select(listed), page.limit,
        page.offset or None))).all())


def _counted_page(counted: Select, listed: Select, limit, offset) -> Select:  # noqa: ANN001
    """One statement (one snapshot: the page is of the list counted): the one value
    ``counted`` selects, beside each site of ``listed`` from ``offset`` on, ``limit`` of
    them (None: every one; either may be a bound parameter), in site-id order (one row of
    NULL sites if none)."""
    n = counted.subquery("counted")
    shown = (listed.order_by(listed.selected_columns.site_id).limit(limit).offset(offset)
             .subquery("shown"))
    return select(n, shown).select_from(n.outerjoin(shown, true())).order_by(shown.c.site_id)


def _items(rows: Sequence) -> tuple[int, list[dict]]:
    """``_counted_page``'s rows as (the count, the sites as items)."""
    return rows[0][0], [{"site_id": s, "stage": st, "icb_code": i, "psc_code": p}
                        for _, s, st, i, p in rows if s is not None]


# Whether the bound quarter's and programme's lists are kept (``quality``).
IS_KEPT = and_(exists().where(QUARTER.c.qn == bindparam("qn")),
               exists().where(LATEST.c.programme == bindparam("programme")))
KEPT = select(IS_KEPT)


def _national(limited: bool) -> Select:
    """A list's kept national count, whether it is kept, and its page (``_counted_page``'s
    rows with that flag after the count), for bound programme, qn, kind (and limit and
    offset when ``limited``)."""
    key = [bindparam(c) for c in ("programme", "qn", "kind")]
    listed = select(*(LISTED.c[c] for c in ITEM)).where(
        *(LISTED.c[c.key] == c for c in key))
    counted = select(func.coalesce(func.max(COUNTED.c.sites), 0).label("n"),
                     IS_KEPT.label("kept")).where(*(COUNTED.c[c.key] == c for c in key))
    return _counted_page(counted, listed, bindparam("limit") if limited else None,
                         bindparam("offset") if limited else None)


NATIONAL_PAGE, NATIONAL_EVERY = _national(True), _national(False)


async def _stale_pscs(session: AsyncSession, programme: str, qn: int,
                      candidates: set[str] | None) -> list[dict]:
    """PSCs whose latest return is older than the quarter, or who never made one, among
    ``candidates`` (None: every PSC of the register copy and every PSC with a return)."""
    start = from_ordinal(qn).start
    latest = dict((await session.execute(
        select(LATEST.c.psc_code, LATEST.c.reported_at)
        .where(LATEST.c.programme == programme))).all())
    if candidates is None:
        pscs = (await session.execute(select(SITE.c.psc_code).distinct())).scalars().all()
        candidates = set(pscs) | set(latest)
    out = []
    for psc in sorted(candidates):
        last = latest.get(psc)
        last_day = None if last is None else local_date(aware(last))
        if last_day is None or last_day < start:
            out.append({"psc_code": psc, "latest_return": last_day})
    return out
