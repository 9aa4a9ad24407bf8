"""Activity by quarter from observation and score events: additive counters per site, rolled
up per area as they come in.

A quarter is the Europe/London quarter of ``taken_at``. Residents observed are a count of each
resident's standing sets per (site, quarter, resident pseudonym): a resident counts as observed
there while that count is > 0, and ``residents`` on the site's row counts those residents.

A withdrawal takes back exactly what the withdrawn event added: ``ObservationSetWithdrawn``
the set (and one of the resident's standing sets), ``ScoreWithdrawn`` what ``counts_of``
added for its ``ScoreComputed`` (nothing for a rejected one) and its flag, if it raised one.
Every event only adds (a withdrawal adds negatives) and the inbox applies each event id once,
so the final counts depend neither on order nor on batching. A withdrawal applied before the
event it withdraws (a rebuild applies activity by event id) takes a counter below 0 for a
while; nothing clamps it, and it ends where the other order ends. A row whose counters all net
to 0 stays; the queries read it as nothing.

Areas. A site's row is counted under the register copy's ICB and PSC (for a site the copy does
not hold yet, its first event's), and ``reports_activity_area`` holds the rows summed per
quarter at each level, so a view reads a few hundred rows instead of rolling up every site.
``reports_activity_tool`` holds the same sums per programme and tool: the rows of the sites
whose stage in force at the quarter's end in that programme names the tool (the stage facts).
All move together: the live consumer adds an event's counts to its site's row and to that
row's areas, of all tools and of each tool its facts name, in one transaction (``add_many``);
a register change moves the site's rows, counts and all, to its new areas
(``follow_register``); and a change of the tool in force moves the rows from the old tool's
roll-ups to the new one's (``follow_facts``, from the fact upkeep). The codes an event carries
are never trusted over the register's: they can differ (a site that moved, a stale copy in
ingest). On PostgreSQL, where several workers apply events at once, the lock ``AREAS`` keeps
adding apart from the other two: adding holds it shared from before it reads the register copy
and the facts until commit, and a transaction that may change the register copy or the facts
holds it exclusively from before it writes either (``lock_areas``, which the fact upkeep
checks), so no row is added under codes or a tool a concurrent change has just replaced. A
bulk replay skips the roll-ups and ``derive`` makes them (and the codes and residents) again
from the rows and the facts at its end.

Versions. Every add also writes a fresh random version for each quarter it added to
(``reports_activity_quarter``), which the API caches that quarter's activity under, and a
fresh data-quality version for each quarter where it started or ended a site's observations,
which the API caches that quarter's data quality under (ARCHITECTURE.md, invariant 13);
the same adds, moves and fact changes keep data quality's site lists (``quality``).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from sqlalchemy import (
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports import quality
from services.reports.domain.adoption import NATIONAL
from services.reports.domain.stages import ordinal_of_instant
from services.reports.models import (
    Activity,
    ActivityArea,
    ActivityQuarter,
    ActivityResident,
    ActivityTool,
    ReportSite,
    StageFact,
)
from shared.dialect import in_values, insert_rows, lock_transaction, upsert, upsert_add
from shared.events import Event
from shared.events.observations import ObservationRecorded, ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn

ACT, RES, AREA = Activity.__table__, ActivityResident.__table__, ActivityArea.__table__
QUARTER, TOOL = ActivityQuarter.__table__, ActivityTool.__table__
SITE, FACT = ReportSite.__table__, StageFact.__table__
AREAS = "reports.activity-areas"   # the lock (see the module docstring)
EXCLUSIVE = "reports.areas-exclusive"   # session.info: this transaction holds it exclusively
CHUNK = 400   # (site, quarter) keys per statement
RISK_COLUMNS = {"low": "risk_low", "low-medium": "risk_low_medium", "medium": "risk_medium",
                "high": "risk_high"}


COUNTERS = ("observation_sets", "scored_sets", "complete_sets", *RISK_COLUMNS.values(),
            "red_scores", "flags", "claim_mismatches")
ROLLED = (*COUNTERS, "residents")   # what the area rows sum
EVENTS = (ObservationRecorded, ObservationSetWithdrawn, ScoreComputed, DeteriorationFlagged,
          ScoreWithdrawn)
TYPES = {cls.TYPE: cls.TOPIC for cls in EVENTS}
SETS = (ObservationRecorded, ObservationSetWithdrawn)   # what moves a resident's standing sets
# (site, quarter) -> its row's counts; (site, quarter, resident) -> standing-set changes
Tally = tuple[dict[tuple[str, int], dict], Counter[tuple[str, int, str]]]


def counts_of(event: Event) -> dict[str, int]:
    """What one event adds to its site's quarter (a withdrawal: negatives)."""
    if isinstance(event, ObservationRecorded):
        return {"observation_sets": 1}
    if isinstance(event, ObservationSetWithdrawn):
        return {"observation_sets": -1}
    if isinstance(event, ScoreComputed):
        return _score(event)
    if isinstance(event, DeteriorationFlagged):
        return {"flags": 1}
    if isinstance(event, ScoreWithdrawn):
        counts = {column: -n for column, n in _score(event).items()}
        if event.flag_id is not None:
            counts["flags"] = -1
        return counts
    raise TypeError(f"not an activity event: {type(event).__name__}")


def _score(event: ScoreComputed | ScoreWithdrawn) -> dict[str, int]:
    """What a score counts (a ``ScoreWithdrawn`` repeats its ``ScoreComputed``'s values)."""
    if event.status == "rejected":
        return {}   # scoring refused to score it: not a scored set
    counts = {"scored_sets": 1, "complete_sets": int(event.total is not None),
              "red_scores": int(event.red_score), "claim_mismatches": int(event.claim_mismatch)}
    if event.risk in RISK_COLUMNS:
        counts[RISK_COLUMNS[event.risk]] = 1
    return counts


async def add_many(session: AsyncSession, events: Sequence[Event]) -> None:
    """Add a batch of events to the counters: one upsert for the residents' standing sets,
    one for the site rows, one for their areas. Every (site, quarter) and (site, quarter,
    resident) an event counts in gets its row, even when the batch nets it to 0 (a row is
    then there however the events were batched). A bulk replay adds with ``add_bulk``."""
    rows, residents = tally(events)
    if not rows:
        return
    quarters = {qn for _, qn in rows}
    await lock_transaction(session, AREAS, shared=True)
    register = await registered(session, {s for s, _ in rows})
    for (site_id, _), row in rows.items():
        if site_id in register:
            row["icb_code"], row["psc_code"] = register[site_id]
    for key, n in (await _observed(session, residents)).items():
        rows[key]["residents"] = n
    stored = await _upsert(session, ACT, rows.values(), ("site_id", "qn"), ROLLED,
                           returning=("site_id", "qn", "icb_code", "psc_code",
                                      "observation_sets"))
    tools = await _tools(session, rows)
    areas: Areas = {}
    flipped: set[tuple[str, int]] = set()   # where a site's observations started or ended
    for site_id, qn, icb, psc, sets in stored:
        row = rows[site_id, qn]
        _roll(areas, qn, icb, psc, row, 1)
        for programme, tool in tools.get((site_id, qn), ()):
            _roll(areas, qn, icb, psc, row, 1, tool=(programme, tool))
        if (sets > 0) != (sets - row["observation_sets"] > 0):
            flipped.add((site_id, qn))
    await _add_areas(session, areas)   # locks each quarter's national row: see ``quality``
    created = await _new_versions(session, quarters, {qn for _, qn in flipped})
    if created or flipped:   # else the lists stand (most transactions mid-quarter)
        await session.run_sync(
            lambda s: quality.follow_activity(s.connection(), created, flipped))


@dataclass(frozen=True)
class Bulk:
    """A bulk replay's activity made ready to write (``bulk``): its site rows, under their
    events' codes, and its residents' standing-set changes, each in key order (``_upsert``),
    and the quarters they touch."""

    sites: list[dict]
    residents: list[dict]
    quarters: set[int]


def bulk(tallied: Tally) -> Bulk:
    """The rows of a ``tally`` (pure: a replay makes them while the chunk before is written)."""
    rows, residents = tallied
    return Bulk(sorted(rows.values(), key=itemgetter("site_id", "qn")),
                sorted(_resident_rows(residents), key=itemgetter("site_id", "qn", "resident")),
                {qn for _, qn in rows})


async def add_bulk(session: AsyncSession, made: Bulk) -> None:
    """A bulk replay's add (rows as ``add_many`` writes them): the site rows and residents'
    standing sets only, the rows under their events' codes; ``derive`` makes the codes,
    residents and roll-ups at its end."""
    if not made.sites:
        return
    await insert_rows(session, ACT, made.sites, add=(["site_id", "qn"], COUNTERS))
    await insert_rows(session, RES, made.residents,
                      add=(["site_id", "qn", "resident"], ["sets"]))
    await _new_versions(session, made.quarters, made.quarters)


async def _new_versions(session: AsyncSession, quarters: set[int], lists: set[int]
                        ) -> set[int]:
    """A fresh version for each quarter whose rows this transaction adds to, and a fresh
    data-quality version for those of ``lists``, where a site's observations started or
    ended (a site's sets rose from 0 or fell to 0: what the data-quality lists read; the
    other counts they do not show; the others keep theirs); returns the quarters whose row
    it wrote first (``quality`` keeps their lists from now on). One statement, quarters in
    order, after the areas (concurrent adders already queue on the quarter's national area
    row by then, so this row lock serialises nothing more; written first, it held a lock a
    register change's exclusive ``AREAS`` holder could wait on: a deadlock). On
    PostgreSQL the upsert says which rows it inserted (``xmax`` is 0 on a row inserted, not
    updated); elsewhere (one writer at a time) the rows are read first."""
    dialect = session.get_bind().dialect.name
    rows = [{"qn": qn, "version": uuid.uuid4().hex,
             "quality": uuid.uuid4().hex if qn in lists else None} for qn in sorted(quarters)]
    stmt = upsert(QUARTER, dialect, ["qn"], rows, unless_null=("quality",))
    if dialect == "postgresql":
        return {qn for qn, inserted in await session.execute(
            stmt.returning(QUARTER.c.qn, literal_column("xmax = 0")))
            if inserted}
    stored = set((await session.execute(select(QUARTER.c.qn).where(
        QUARTER.c.qn.in_(sorted(quarters))))).scalars())
    await session.execute(stmt)
    return set(quarters) - stored


def tally(events: Iterable[Event], into: Tally | None = None) -> Tally:
    """The events' counts per (site, quarter) and standing-set changes per resident there
    (added to ``into``'s, and returned, when given: one tally of several parts)."""
    rows, residents = ({}, Counter()) if into is None else into
    for event in events:
        assert isinstance(event, EVENTS)
        counts = counts_of(event)
        if not counts:
            continue
        qn = ordinal_of_instant(event.taken_at)
        row = rows.get((event.site_id, qn))
        if row is None:
            row = rows[(event.site_id, qn)] = {
                "site_id": event.site_id, "qn": qn, "icb_code": event.icb_code,
                "psc_code": event.psc_code, **dict.fromkeys(ROLLED, 0)}
        for column, n in counts.items():
            row[column] += n
        if isinstance(event, SETS):
            residents[(event.site_id, qn, event.resident)] += counts["observation_sets"]
    return (rows, residents) if into is None else into


async def _upsert(session: AsyncSession, table, rows: Iterable[dict],  # noqa: ANN001
                  key: tuple[str, ...], counters: Sequence[str],
                  returning: tuple[str, ...] | None = None) -> list:
    """Add ``counters`` of rows, in key order (one lock order for concurrent writers)."""
    ordered = sorted(rows, key=itemgetter(*key))
    return await insert_rows(session, table, ordered, add=(list(key), counters),
                             returning=returning)


def _resident_rows(residents: Counter[tuple[str, int, str]]) -> list[dict]:
    return [{"site_id": s, "qn": q, "resident": r, "sets": n}
            for (s, q, r), n in residents.items()]


async def _observed(session: AsyncSession, residents: Counter[tuple[str, int, str]]
                    ) -> Counter[tuple[str, int]]:
    """Add the residents' standing-set changes; returns the change in residents observed
    per (site, quarter): +1 for each resident whose count rose above 0, -1 for each whose
    count fell to 0 or below (the upsert returns the count after the change)."""
    out: Counter[tuple[str, int]] = Counter()
    for site_id, qn, resident, now in await _upsert(
            session, RES, _resident_rows(residents), ("site_id", "qn", "resident"), ("sets",),
            returning=("site_id", "qn", "resident", "sets")):
        before = now - residents[site_id, qn, resident]
        out[site_id, qn] += (now > 0) - (before > 0)
    return out


# (programme, tool) or () for all tools, level, quarter, code -> the counts to add there
Areas = dict[tuple[tuple[str, ...], str, int, str], Counter[str]]
AREA_KEY, TOOL_KEY = ("level", "qn", "code"), ("programme", "tool", "level", "qn", "code")


def _roll(areas: Areas, qn: int, icb: str, psc: str, row: Mapping[str, int], sign: int,
          national: bool = True, tool: tuple[str, str] | tuple[()] = ()) -> None:
    """Add ``sign`` times a site row's counts to its areas (national too, unless not): of
    all tools, or of one ``tool`` (programme, tool)."""
    levels = (("icb", icb), ("psc", psc), *((("national", NATIONAL),) if national else ()))
    for level, code in levels:
        area = areas.setdefault((tool, level, qn, code), Counter())
        for column in ROLLED:
            area[column] += sign * row[column]


def _area_rows(areas: Areas, tools: bool) -> tuple[list[dict], tuple[str, ...]]:
    """The rows to add to ``reports_activity_tool`` (tools) or ``reports_activity_area``
    (not), in key order, and their key."""
    key = TOOL_KEY if tools else AREA_KEY
    rows = [dict(zip(key, (*tool, level, qn, code), strict=True), **{c: n[c] for c in ROLLED})
            for (tool, level, qn, code), n in areas.items() if bool(tool) == tools]
    return sorted(rows, key=itemgetter(*key)), key


async def _add_areas(session: AsyncSession, areas: Areas) -> None:
    for table, tools in ((AREA, False), (TOOL, True)):
        rows, key = _area_rows(areas, tools)
        await insert_rows(session, table, rows, add=(list(key), ROLLED))


async def _tools(session: AsyncSession, keys: Collection[tuple[str, int]]
                 ) -> dict[tuple[str, int], list[tuple[str, str]]]:
    """(site, quarter) -> the (programme, tool) of each stage in force there that names a
    tool (``reports_stage_fact``), for these keys."""
    dialect = session.get_bind().dialect.name
    wanted, out = set(keys), defaultdict(list)
    for site_id, qn, programme, tool in await session.execute(
            select(FACT.c.site_id, FACT.c.qn, FACT.c.programme, FACT.c.tool)
            .where(in_values(FACT.c.site_id, sorted({s for s, _ in wanted}), dialect),
                   in_values(FACT.c.qn, sorted({q for _, q in wanted}), dialect),
                   FACT.c.tool.is_not(None))):
        if (site_id, qn) in wanted:
            out[site_id, qn].append((programme, tool))
    return out


async def registered(session: AsyncSession, site_ids: Collection[str]
                     ) -> dict[str, tuple[str, str]]:
    """site_id -> (ICB, PSC) in the register copy, for those of these sites it holds."""
    dialect = session.get_bind().dialect.name
    return {s: (i, p) for s, i, p in await session.execute(
        select(SITE.c.site_id, SITE.c.icb_code, SITE.c.psc_code)
        .where(in_values(SITE.c.site_id, sorted(site_ids), dialect)))}


async def lock_areas(session: AsyncSession) -> None:
    """Before a register change or a fact refresh in a live transaction: see the module
    docstring."""
    await lock_transaction(session, AREAS)
    session.info[EXCLUSIVE] = True


async def follow_register(session: AsyncSession, site_ids: Collection[str]) -> None:
    """Move these sites' rows whose codes are not the register copy's (the site moved, or was
    registered after its first events) to the register's codes, and their counts with them
    to their new areas; then their data-quality lists, which show those codes and the
    register copy's region. Call with ``lock_areas`` held, after writing the copy."""
    if not site_ids:
        return
    dialect = session.get_bind().dialect.name
    moving = (select(ACT, SITE.c.icb_code.label("to_icb"), SITE.c.psc_code.label("to_psc"))
              .join(SITE, SITE.c.site_id == ACT.c.site_id)
              .where(in_values(ACT.c.site_id, sorted(site_ids), dialect),
                     or_(ACT.c.icb_code != SITE.c.icb_code, ACT.c.psc_code != SITE.c.psc_code)))
    rows = (await session.execute(moving)).mappings().all()
    if rows:
        tools = await _tools(session, {(r["site_id"], r["qn"]) for r in rows})
        areas: Areas = {}
        for row in rows:
            for tool in ((), *tools.get((row["site_id"], row["qn"]), ())):
                _roll(areas, row["qn"], row["icb_code"], row["psc_code"], row, -1,
                      national=False, tool=tool)
                _roll(areas, row["qn"], row["to_icb"], row["to_psc"], row, 1, national=False,
                      tool=tool)
        await session.execute(_to_register(
            in_values(ACT.c.site_id, sorted({r["site_id"] for r in rows}), dialect)))
        await _add_areas(session, areas)
    keys = [tuple(k) for k in await session.execute(select(ACT.c.site_id, ACT.c.qn).where(
        in_values(ACT.c.site_id, sorted(site_ids), dialect)))]
    if keys:
        await session.run_sync(lambda s: quality.refresh(s.connection(), keys))


def _to_register(where):  # noqa: ANN001, ANN202 - a clause, an Update
    """Set the rows' codes to the register copy's, where they differ."""
    return (update(ACT).values(icb_code=SITE.c.icb_code, psc_code=SITE.c.psc_code)
            .where(SITE.c.site_id == ACT.c.site_id, where,
                   or_(ACT.c.icb_code != SITE.c.icb_code, ACT.c.psc_code != SITE.c.psc_code)))


async def derive(session: AsyncSession) -> None:
    """Make the codes, ``residents`` and the area rows again from the site rows, the
    residents' standing sets, the register copy and the stage facts (derive these first):
    what the live upkeep keeps them equal to (after a bulk replay, which skips it, and in
    ``mandet rebuild-reports``). Takes the lock exclusively; the caller's transaction
    should take it first (``lock_areas``) if it locks anything else before this."""
    await lock_areas(session)
    await session.execute(_to_register(literal(True)))
    standing = (select(RES.c.site_id, RES.c.qn, func.count().label("n")).where(RES.c.sets > 0)
                .group_by(RES.c.site_id, RES.c.qn).subquery())
    await session.execute(update(ACT).values(residents=standing.c.n).where(
        ACT.c.site_id == standing.c.site_id, ACT.c.qn == standing.c.qn,
        ACT.c.residents != standing.c.n))
    await session.execute(update(ACT).values(residents=0).where(
        ACT.c.residents != 0, ~exists().where(RES.c.site_id == ACT.c.site_id,
                                              RES.c.qn == ACT.c.qn, RES.c.sets > 0)))
    await session.execute(delete(AREA))
    await session.execute(delete(TOOL))
    joined = ACT.join(FACT, and_(FACT.c.site_id == ACT.c.site_id, FACT.c.qn == ACT.c.qn,
                                 FACT.c.tool.is_not(None)))
    for level, code in (("national", None), ("icb", ACT.c.icb_code), ("psc", ACT.c.psc_code)):
        keys = [ACT.c.qn] if code is None else [ACT.c.qn, code]
        sums = [literal(level), ACT.c.qn, literal(NATIONAL) if code is None else code,
                *(func.sum(ACT.c[c]) for c in ROLLED)]
        await session.execute(insert(AREA).from_select(
            [*AREA_KEY, *ROLLED], select(*sums).group_by(*keys)))
        tool = [FACT.c.programme, FACT.c.tool]
        await session.execute(insert(TOOL).from_select(
            [*TOOL_KEY, *ROLLED], select(*tool, *sums).select_from(joined)
            .group_by(*tool, *keys)))


def follow_facts(conn: Connection, changed: Mapping[tuple[str, int], Iterable[tuple]]) -> None:
    """Move site rows between the per-tool roll-ups as the facts changed: ``changed`` maps
    (site, quarter) to (programme, tool before, tool after) for each stage in force whose
    tool changed (None: no fact, or a fact naming none). Called by the fact upkeep, on its
    sync connection, with ``lock_areas`` held (module docstring); the rows' codes are
    their own, as the other roll-ups'."""
    keys = sorted(changed)
    areas: Areas = {}
    for i in range(0, len(keys), CHUNK):
        for row in conn.execute(select(ACT).where(
                tuple_(ACT.c.site_id, ACT.c.qn).in_(keys[i:i + CHUNK]))).mappings():
            for programme, before, after in changed[row["site_id"], row["qn"]]:
                for tool, sign in ((before, -1), (after, 1)):
                    if tool is not None:
                        _roll(areas, row["qn"], row["icb_code"], row["psc_code"], row, sign,
                              tool=(programme, tool))
    rows, key = _area_rows(areas, tools=True)
    if rows:
        conn.execute(upsert_add(TOOL, conn.dialect.name, list(key), ROLLED), rows)
