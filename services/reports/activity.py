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
Both move together: the live consumer adds an event's counts to its site's row and to that
row's areas in one transaction (``add_many``), and a register change moves the site's rows,
counts and all, to its new areas (``follow_register``). The codes an event carries are never
trusted over the register's: they can differ (a site that moved, a stale copy in ingest).
On PostgreSQL, where several workers apply events at once, the lock ``AREAS`` keeps the two
apart: adding holds it shared from before it reads the register copy until commit, and a
register change holds it exclusively from before it writes the copy, so no row is added under
codes a concurrent change has just replaced. A bulk replay skips the roll-ups and ``derive``
makes them (and the codes and residents) again from the rows at its end, as the facts are.

Versions. Every add also writes a fresh random version for each quarter it added to
(``reports_activity_quarter``), which the API caches that quarter's activity under, and a
fresh data-quality version for each quarter where it started or ended a site's observations,
which the API caches that quarter's data quality under (ARCHITECTURE.md, invariant 13).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from operator import itemgetter

from sqlalchemy import delete, exists, func, insert, literal, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.domain.adoption import NATIONAL
from services.reports.domain.stages import ordinal_of_instant
from services.reports.models import (
    Activity,
    ActivityArea,
    ActivityQuarter,
    ActivityResident,
    ReportSite,
)
from shared.dialect import in_values, insert_rows, lock_transaction, upsert
from shared.events import Event
from shared.events.observations import ObservationRecorded, ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn

ACT, RES, AREA = Activity.__table__, ActivityResident.__table__, ActivityArea.__table__
QUARTER = ActivityQuarter.__table__
SITE = ReportSite.__table__
AREAS = "reports.activity-areas"   # the lock (see the module docstring)
RISK_COLUMNS = {"low": "risk_low", "low-medium": "risk_low_medium", "medium": "risk_medium",
                "high": "risk_high"}


COUNTERS = ("observation_sets", "scored_sets", "complete_sets", *RISK_COLUMNS.values(),
            "red_scores", "flags", "claim_mismatches")
ROLLED = (*COUNTERS, "residents")   # what the area rows sum
EVENTS = (ObservationRecorded, ObservationSetWithdrawn, ScoreComputed, DeteriorationFlagged,
          ScoreWithdrawn)
TYPES = {cls.TYPE: cls.TOPIC for cls in EVENTS}
SETS = (ObservationRecorded, ObservationSetWithdrawn)   # what moves a resident's standing sets


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


async def add_many(session: AsyncSession, events: Sequence[Event], *,
                   live: bool = True) -> None:
    """Add a batch of events to the counters: one upsert for the residents' standing sets,
    one for the site rows, one for their areas. Every (site, quarter) and (site, quarter,
    resident) an event counts in gets its row, even when the batch nets it to 0 (a row is
    then there however the events were batched). ``live=False`` (a bulk replay): the site
    rows only, under their events' codes; ``derive`` does the rest."""
    rows, residents = _tally(events)
    if not rows:
        return
    quarters = {qn for _, qn in rows}
    if not live:
        await _upsert(session, ACT, rows.values(), ("site_id", "qn"), COUNTERS)
        await _upsert(session, RES, _resident_rows(residents), ("site_id", "qn", "resident"),
                      ("sets",))
        await _new_versions(session, quarters, quarters)
        return
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
    areas: dict[tuple[str, int, str], Counter[str]] = {}
    lists: set[int] = set()   # quarters where a site's observations started or ended
    for site_id, qn, icb, psc, sets in stored:
        row = rows[site_id, qn]
        _roll(areas, qn, icb, psc, row, 1)
        if (sets > 0) != (sets - row["observation_sets"] > 0):
            lists.add(qn)
    await _add_areas(session, areas)
    await _new_versions(session, quarters, lists)


async def _new_versions(session: AsyncSession, quarters: set[int], lists: set[int]) -> None:
    """A fresh version for each quarter whose rows this transaction adds to, and a fresh
    data-quality version for those of ``lists``, where a site's observations started or
    ended (a site's sets rose from 0 or fell to 0: what the data-quality lists read; the
    other counts they do not show; the others keep theirs). One statement, quarters in
    order, last (concurrent adders already queue on the quarter's national area row by
    then, so this row lock serialises nothing more; written first, it held a lock a
    register change's exclusive ``AREAS`` holder could wait on: a deadlock)."""
    rows = [{"qn": qn, "version": uuid.uuid4().hex,
             "quality": uuid.uuid4().hex if qn in lists else None} for qn in sorted(quarters)]
    await session.execute(upsert(QUARTER, session.get_bind().dialect.name, ["qn"], rows,
                                 unless_null=("quality",)))


def _tally(events: Sequence[Event]) -> tuple[dict[tuple[str, int], dict],
                                             Counter[tuple[str, int, str]]]:
    """The batch's counts per (site, quarter) and standing-set changes per resident there."""
    rows: dict[tuple[str, int], dict] = {}
    residents: Counter[tuple[str, int, str]] = Counter()
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
    return rows, residents


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


def _roll(areas: dict[tuple[str, int, str], Counter[str]], qn: int, icb: str, psc: str,
          row: dict, sign: int, national: bool = True) -> None:
    """Add ``sign`` times a site row's counts to its areas (national too, unless not)."""
    levels = (("icb", icb), ("psc", psc), *((("national", NATIONAL),) if national else ()))
    for level, code in levels:
        area = areas.setdefault((level, qn, code), Counter())
        for column in ROLLED:
            area[column] += sign * row[column]


async def _add_areas(session: AsyncSession,
                     areas: dict[tuple[str, int, str], Counter[str]]) -> None:
    await _upsert(session, AREA, [{"level": level, "qn": qn, "code": code,
                                   **{c: n[c] for c in ROLLED}}
                                  for (level, qn, code), n in areas.items()],
                  ("level", "qn", "code"), ROLLED)


async def registered(session: AsyncSession, site_ids: Collection[str]
                     ) -> dict[str, tuple[str, str]]:
    """site_id -> (ICB, PSC) in the register copy, for those of these sites it holds."""
    dialect = session.get_bind().dialect.name
    return {s: (i, p) for s, i, p in await session.execute(
        select(SITE.c.site_id, SITE.c.icb_code, SITE.c.psc_code)
        .where(in_values(SITE.c.site_id, sorted(site_ids), dialect)))}


async def lock_register(session: AsyncSession) -> None:
    """Before a register change in a live transaction: see the module docstring."""
    await lock_transaction(session, AREAS)


async def follow_register(session: AsyncSession, site_ids: Collection[str]) -> None:
    """Move these sites' rows whose codes are not the register copy's (the site moved, or was
    registered after its first events) to the register's codes, and their counts with them
    to their new areas. Call with ``lock_register`` held, after writing the copy."""
    if not site_ids:
        return
    dialect = session.get_bind().dialect.name
    moving = (select(ACT, SITE.c.icb_code.label("to_icb"), SITE.c.psc_code.label("to_psc"))
              .join(SITE, SITE.c.site_id == ACT.c.site_id)
              .where(in_values(ACT.c.site_id, sorted(site_ids), dialect),
                     or_(ACT.c.icb_code != SITE.c.icb_code, ACT.c.psc_code != SITE.c.psc_code)))
    rows = (await session.execute(moving)).mappings().all()
    if not rows:
        return
    areas: dict[tuple[str, int, str], Counter[str]] = {}
    for row in rows:
        _roll(areas, row["qn"], row["icb_code"], row["psc_code"], row, -1, national=False)
        _roll(areas, row["qn"], row["to_icb"], row["to_psc"], row, 1, national=False)
    await session.execute(_to_register(
        in_values(ACT.c.site_id, sorted({r["site_id"] for r in rows}), dialect)))
    await _add_areas(session, areas)


def _to_register(where):  # noqa: ANN001, ANN202 - a clause, an Update
    """Set the rows' codes to the register copy's, where they differ."""
    return (update(ACT).values(icb_code=SITE.c.icb_code, psc_code=SITE.c.psc_code)
            .where(SITE.c.site_id == ACT.c.site_id, where,
                   or_(ACT.c.icb_code != SITE.c.icb_code, ACT.c.psc_code != SITE.c.psc_code)))


async def derive(session: AsyncSession) -> None:
    """Make the codes, ``residents`` and the area rows again from the site rows, the
    residents' standing sets and the register copy: what the live upkeep keeps them equal
    to (after a bulk replay, which skips it, and in ``mandet rebuild-reports``). Takes the
    lock exclusively; the caller's transaction should take it first (``lock_register``)
    if it locks anything else before this."""
    await lock_register(session)
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
    for level, code in (("national", None), ("icb", ACT.c.icb_code), ("psc", ACT.c.psc_code)):
        keys = [ACT.c.qn] if code is None else [ACT.c.qn, code]
        await session.execute(insert(AREA).from_select(
            ["level", "qn", "code", *ROLLED],
            select(literal(level), ACT.c.qn, literal(NATIONAL) if code is None else code,
                   *(func.sum(ACT.c[c]) for c in ROLLED)).group_by(*keys)))
