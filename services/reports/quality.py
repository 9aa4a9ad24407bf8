"""The data-quality lists kept as rows, so a read is a count and a page from an index.

Two of data quality's checks list sites per programme and quarter (``activity_queries``):
``stage5_without_observations``, the sites whose stage in force is 5 or above and whose
activity row there has no observation sets (none, or all withdrawn), and
``observations_below_stage4``, the sites whose activity row has sets and whose stage in force
is below 4 (0 without a fact). A site's membership depends only on its fact and its activity
row in that quarter (and, for the item, the register copy's region), so it is recomputed per
(site, quarter) whenever one of those changes, in the transaction that changes it:

- ``follow_activity``, from ``activity.add_many``: the keys where a site's observations
  started or ended; and a quarter's first activity rows make its lists whole;
- ``refresh``, from the fact upkeep, for the keys whose facts changed, and from
  ``activity.follow_register`` for the moved or registered sites' keys;
- ``fill``, for a programme's first return (every observed site is then below stage 4 in
  it), and ``derive``, every list again (a rebuild).

Which lists are kept: the quarters activity has rows in (a ``reports_activity_quarter``
row), and the programmes with returns (a ``reports_latest_return`` row). A quarter without
activity has nothing to change its lists but a stage return (``activity_queries`` joins
the facts for it, as for a programme nobody returned), and keeping those quarters would
cost a rebuild a row for every fact at stage 5 or above: 200,000 nationally.

Concurrency (PostgreSQL): the keys of one quarter are only rewritten by ``add_many``, which
holds that quarter's national activity row locked by then (so adders of one quarter
serialise here as there), and by the fact upkeep and register changes, which hold
``activity.AREAS`` exclusively. A quarter's first adder makes its lists whole before it
writes the quarter's row; the next adder of that quarter waits for its commit on the
national row, and finds the quarter kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import String, and_, cast, delete, func, insert, literal, select, union_all
from sqlalchemy.engine import Connection

from services.reports.models import (
    Activity,
    ActivityQuarter,
    LatestReturn,
    QualityCount,
    QualitySite,
    ReportSite,
    StageFact,
)
from shared.dialect import in_values, upsert_add

LISTED, COUNTED = QualitySite.__table__, QualityCount.__table__
ACT, FACT, SITE = Activity.__table__, StageFact.__table__, ReportSite.__table__
QUARTER, LATEST = ActivityQuarter.__table__, LatestReturn.__table__
HIGH, LOW = "stage5_without_observations", "observations_below_stage4"
KINDS = (HIGH, LOW)
ITEM = ("site_id", "stage", "icb_code", "psc_code")   # what a list shows of each site
COLUMNS = ("programme", "qn", "kind", "site_id", "stage", "tool", "icb_code", "psc_code",
           "region")
CHUNK = 400   # (site, quarter) keys per statement


def kept(conn: Connection) -> tuple[set[int], list[str]]:
    """The quarters and the programmes whose lists are kept, in one round trip."""
    rows = conn.execute(union_all(
        select(literal("qn"), cast(QUARTER.c.qn, String)),
        select(literal("programme"), LATEST.c.programme).distinct())).all()
    return ({int(v) for k, v in rows if k == "qn"},
            sorted(v for k, v in rows if k == "programme"))


def follow_activity(conn: Connection, quarters: Collection[int],
                    started_or_ended: Iterable[tuple[str, int]]) -> None:
    """After ``add_many`` wrote its rows and before it writes its quarters' versions: make
    the lists of ``quarters`` not kept yet whole, and refresh the keys (site, quarter)
    where a site's observations started or ended in the others."""
    quarters_kept, programmes = kept(conn)
    new = sorted(set(quarters) - quarters_kept)
    if new:
        _fill(conn, new, programmes)
    _refresh(conn, sorted(k for k in started_or_ended if k[1] in quarters_kept), programmes)


def refresh(conn: Connection, keys: Iterable[tuple[str, int]]) -> None:
    """Recompute every kept list's membership of these (site, quarter) keys."""
    quarters_kept, programmes = kept(conn)
    _refresh(conn, sorted({k for k in keys if k[1] in quarters_kept}), programmes)


def _refresh(conn: Connection, keys: Sequence[tuple[str, int]], programmes: list[str]
             ) -> None:
    """Each chunk of keys as the sites and quarters they name, every site in every quarter
    (a superset when they span quarters: recomputing a key that did not change rewrites it
    as it was), so each statement's text is the same whatever the keys (on PostgreSQL two
    array parameters) and is prepared once: a text per number of keys was planned anew each
    time, 1.9 ms of each insert."""
    changed: Counter[tuple[str, int, str]] = Counter()
    dialect = conn.dialect.name

    def key(table):  # noqa: ANN001, ANN202 - a Table, a clause
        # ``qn + 0``: found through the primary key, site first. PostgreSQL's estimate for
        # a quarter that has just begun is a row or two (no statistics yet), and it then
        # chose the quarter index and filtered every row of the quarter for the sites.
        return and_(in_values(table.c.site_id, sorted({s for s, _ in chunk}), dialect),
                    in_values(table.c.qn + 0, sorted({q for _, q in chunk}), dialect))
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        for row in conn.execute(delete(LISTED).where(key(LISTED))
                                .returning(LISTED.c.programme, LISTED.c.qn, LISTED.c.kind)):
            changed[tuple(row)] -= 1
        members = _members(key(FACT), key(ACT), programmes, dialect)
        if members is not None:
            for row in conn.execute(members.returning(LISTED.c.programme, LISTED.c.qn,
                                                      LISTED.c.kind)):
                changed[tuple(row)] += 1
    rows = [{"programme": p, "qn": q, "kind": k, "sites": n}
            for (p, q, k), n in sorted(changed.items()) if n]
    if rows:
        conn.execute(upsert_add(COUNTED, dialect, ["programme", "qn", "kind"], "sites"), rows)


def fill(conn: Connection, *, programmes: Collection[str]) -> None:
    """Make these programmes' lists in every kept quarter again (a programme's first
    return), and their counts."""
    quarters_kept, _ = kept(conn)
    _fill(conn, sorted(quarters_kept), sorted(programmes))


def derive(conn: Connection) -> None:
    """Every kept list again (after the facts, activity and latest returns: a rebuild)."""
    conn.execute(delete(LISTED))
    conn.execute(delete(COUNTED))
    quarters_kept, programmes = kept(conn)
    _fill(conn, sorted(quarters_kept), programmes)


def _fill(conn: Connection, quarters: list[int], programmes: list[str]) -> None:
    """Make the lists of these quarters and programmes again, and their counts."""
    if not quarters or not programmes:
        return

    def scope(table) -> list:  # noqa: ANN001
        return [table.c.qn.in_(quarters), table.c.programme.in_(programmes)]
    conn.execute(delete(LISTED).where(*scope(LISTED)))
    conn.execute(delete(COUNTED).where(*scope(COUNTED)))
    members = _members(FACT.c.qn.in_(quarters), ACT.c.qn.in_(quarters), programmes,
                       conn.dialect.name)
    if members is not None:
        conn.execute(members)
    conn.execute(insert(COUNTED).from_select(
        ["programme", "qn", "kind", "sites"],
        select(LISTED.c.programme, LISTED.c.qn, LISTED.c.kind, func.count())
        .where(*scope(LISTED)).group_by(LISTED.c.programme, LISTED.c.qn, LISTED.c.kind)))


def _members(facts, activity, programmes: Sequence[str], dialect: str):  # noqa: ANN001, ANN202
    """One INSERT ... SELECT of the members of these programmes' lists among the facts and
    activity rows the clauses keep (None without programmes): a programme's below-stage-4
    list is a SELECT of its own, its name a bound value, so the statement's text depends
    only on how many programmes there are."""
    if not programmes:
        return None
    observed = func.coalesce(ACT.c.observation_sets, 0)
    parts = [select(FACT.c.programme, FACT.c.qn, literal(HIGH), FACT.c.site_id, FACT.c.stage,
                    FACT.c.tool, FACT.c.icb_code, FACT.c.psc_code, FACT.c.region)
             .select_from(FACT.outerjoin(ACT, and_(ACT.c.site_id == FACT.c.site_id,
                                                   ACT.c.qn == FACT.c.qn)))
             .where(facts, in_values(FACT.c.programme, programmes, dialect), FACT.c.stage >= 5,
                    observed <= 0)]
    stage = func.coalesce(FACT.c.stage, 0)
    for programme in programmes:
        named = literal(programme, String)
        parts.append(
            select(named, ACT.c.qn, literal(LOW), ACT.c.site_id, stage, FACT.c.tool,
                   ACT.c.icb_code, ACT.c.psc_code, SITE.c.region)
            .select_from(ACT.outerjoin(FACT, and_(FACT.c.site_id == ACT.c.site_id,
                                                  FACT.c.qn == ACT.c.qn,
                                                  FACT.c.programme == named))
                         .outerjoin(SITE, SITE.c.site_id == ACT.c.site_id))
            .where(activity, ACT.c.observation_sets > 0, stage < 4))
    return insert(LISTED).from_select(list(COLUMNS), union_all(*parts))
