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
cost a rebuild a row for every fact at stage 5 or above: 161,593 of the bench's 348,220
national facts.

Concurrency (PostgreSQL): the keys of one quarter are only rewritten by ``add_many``, which
holds that quarter's national activity row locked by then (so adders of one quarter
serialise here as there), and by the fact upkeep and register changes, which hold
``activity.AREAS`` exclusively. A quarter's first adder is the one whose upsert inserts
the quarter's version row, and it makes the quarter's lists whole; the next adder of that
quarter waits for its commit on the national row, and finds the row there.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql
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
from shared.dialect import upsert_add

LISTED, COUNTED = QualitySite.__table__, QualityCount.__table__
ACT, FACT, SITE = Activity.__table__, StageFact.__table__, ReportSite.__table__
QUARTER, LATEST = ActivityQuarter.__table__, LatestReturn.__table__
HIGH, LOW = "stage5_without_observations", "observations_below_stage4"
COUNT_KEY = ("programme", "qn", "kind")
ITEM = ("site_id", "stage", "icb_code", "psc_code")   # what a list shows of each site
COLUMNS = ("programme", "qn", "kind", "site_id", "stage", "tool", "icb_code", "psc_code",
           "region")
CHUNK = 400   # (site, quarter) keys per statement


def kept_quarters(conn: Connection) -> set[int]:
    return set(conn.execute(select(QUARTER.c.qn)).scalars())


def follow_activity(conn: Connection, created: Collection[int],
                    started_or_ended: Iterable[tuple[str, int]]) -> None:
    """After ``add_many`` wrote its rows and its quarters' versions (``created``: the
    quarters whose version row it wrote first, so their lists are kept from now on): make
    those quarters' lists whole, and refresh the keys (site, quarter) where a site's
    observations started or ended in the others."""
    if created:
        _fill(conn, sorted(created))
    _refresh(conn, sorted(k for k in started_or_ended if k[1] not in created))


def refresh(conn: Connection, keys: Iterable[tuple[str, int]]) -> None:
    """Recompute every kept list's membership of these (site, quarter) keys."""
    keys = set(keys)
    if keys:
        quarters = kept_quarters(conn)
        _refresh(conn, sorted(k for k in keys if k[1] in quarters))


def _refresh(conn: Connection, keys: Sequence[tuple[str, int]]) -> None:
    """Delete the keys' rows, insert their members, add the difference to the counts: on
    PostgreSQL one statement (``_in_one``), elsewhere three. Each chunk of keys is bound as
    the sites and quarters it names, every site in every quarter (a superset when they span
    quarters: recomputing a key that did not change rewrites it as it was). Live, this runs
    in most transactions at a quarter's start, whose round trips the event-to-view latency
    queues behind."""
    statements = _refreshing(conn.dialect.name)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        bound = {"sites": sorted({s for s, _ in chunk}), "qns": sorted({q for _, q in chunk})}
        if len(statements) == 1:
            conn.execute(statements[0], bound)
            continue
        gone, came = statements
        changed: Counter[tuple[str, int, str]] = Counter()
        for row in conn.execute(gone, bound):
            changed[tuple(row)] -= 1
        for row in conn.execute(came, bound):
            changed[tuple(row)] += 1
        rows = [{"programme": p, "qn": q, "kind": k, "sites": n}
                for (p, q, k), n in sorted(changed.items()) if n]
        if rows:
            conn.execute(upsert_add(COUNTED, conn.dialect.name, list(COUNT_KEY), "sites"), rows)



@functools.cache
def _refreshing(dialect: str) -> tuple:
    """``_refresh``'s statements, built once per dialect with the keys bound as ``sites``
    and ``qns`` (built per transaction, they cost the worker 2.5 ms of each: more than
    running them): on PostgreSQL two array parameters, so the text, prepared once, is the
    same whatever the keys (a text per number of keys was planned anew each time, 1.9 ms of
    each insert)."""
    def key(table):  # noqa: ANN001, ANN202 - a Table, a clause
        # ``qn + 0``: found through the primary key, site first. PostgreSQL's estimate for
        # a quarter that has just begun is a row or two (no statistics yet), and it then
        # chose the quarter index and filtered every row of the quarter for the sites.
        if dialect == "postgresql":
            return and_(table.c.site_id == any_(bindparam("sites", type_=ARRAY(String))),
                        (table.c.qn + 0) == any_(bindparam("qns", type_=ARRAY(Integer))))
        return and_(table.c.site_id.in_(bindparam("sites", expanding=True)),
                    (table.c.qn + 0).in_(bindparam("qns", expanding=True)))
    listed = (LISTED.c.programme, LISTED.c.qn, LISTED.c.kind)
    gone = delete(LISTED).where(key(LISTED)).returning(*listed)
    members = _members(key(FACT), key(ACT))
    if dialect == "postgresql":
        return (_in_one(gone.cte("gone"), members),)
    return gone, insert(LISTED).from_select(list(COLUMNS), members).returning(*listed)


def _in_one(gone, members):  # noqa: ANN001, ANN202 - a CTE and a Select, an Insert
    """``WITH gone AS (DELETE ...), came AS (INSERT ... SELECT ...) INSERT INTO counts``
    the difference (PostgreSQL). The insertion's rows wait for the deletion (a one-time
    filter on its count), so a key deleted and inserted again never meets itself."""
    after = select(members.subquery("members")).where(
        select(func.count()).select_from(gone).scalar_subquery() >= 0)
    came = (insert(LISTED).from_select(list(COLUMNS), after)
            .returning(LISTED.c.programme, LISTED.c.qn, LISTED.c.kind).cte("came"))
    moves = union_all(select(gone.c.programme, gone.c.qn, gone.c.kind, literal(-1).label("n")),
                      select(came.c.programme, came.c.qn, came.c.kind, literal(1))).subquery()
    summed = (select(moves.c.programme, moves.c.qn, moves.c.kind, func.sum(moves.c.n))
              .group_by(moves.c.programme, moves.c.qn, moves.c.kind)
              .having(func.sum(moves.c.n) != 0))
    stmt = postgresql.insert(COUNTED).from_select([*COUNT_KEY, "sites"], summed)
    return stmt.on_conflict_do_update(
        index_elements=list(COUNT_KEY),
        set_={"sites": COUNTED.c.sites + stmt.excluded.sites}).add_cte(gone, came)


def fill(conn: Connection, *, programmes: Collection[str]) -> None:
    """Make these programmes' lists in every kept quarter again (a programme's first
    return), and their counts."""
    _fill(conn, sorted(kept_quarters(conn)), sorted(programmes))


def derive(conn: Connection) -> None:
    """Every kept list again (after the facts, activity and latest returns: a rebuild)."""
    conn.execute(delete(LISTED))
    conn.execute(delete(COUNTED))
    _fill(conn, sorted(kept_quarters(conn)))


def _fill(conn: Connection, quarters: list[int], programmes: list[str] | None = None
          ) -> None:
    """Make the lists of these quarters and programmes (None: every one with returns)
    again, and their counts."""
    if not quarters:
        return

    def scope(table) -> list:  # noqa: ANN001
        where = [table.c.qn.in_(quarters)]
        return where if programmes is None else [*where, table.c.programme.in_(programmes)]
    conn.execute(delete(LISTED).where(*scope(LISTED)))
    conn.execute(delete(COUNTED).where(*scope(COUNTED)))
    conn.execute(insert(LISTED).from_select(list(COLUMNS), _members(
        FACT.c.qn.in_(quarters), ACT.c.qn.in_(quarters), programmes)))
    conn.execute(insert(COUNTED).from_select(
        [*COUNT_KEY, "sites"],
        select(LISTED.c.programme, LISTED.c.qn, LISTED.c.kind, func.count())
        .where(*scope(LISTED)).group_by(LISTED.c.programme, LISTED.c.qn, LISTED.c.kind)))
    if conn.dialect.name == "postgresql":
        # Statistics for what was just written in bulk: without them (autovacuum analyzes a
        # minute or more later) the live refresh's plan scanned the quarter's whole list,
        # 1.96 ms a call against 0.53 (bench ``reports-freshness``, pg_stat_statements).
        conn.execute(text(f"ANALYZE {LISTED.name}, {COUNTED.name}"))


def _members(facts, activity, programmes: Sequence[str] | None = None):  # noqa: ANN001, ANN202
    """The members of the lists of these programmes (None: every one with returns) among
    the facts and activity rows the clauses keep, as one SELECT of ``COLUMNS``."""
    observed = func.coalesce(ACT.c.observation_sets, 0)
    high = (select(FACT.c.programme, FACT.c.qn, literal(HIGH), FACT.c.site_id, FACT.c.stage,
                   FACT.c.tool, FACT.c.icb_code, FACT.c.psc_code, FACT.c.region)
            .select_from(FACT.outerjoin(ACT, and_(ACT.c.site_id == FACT.c.site_id,
                                                  ACT.c.qn == FACT.c.qn)))
            .where(facts, FACT.c.stage >= 5, observed <= 0))
    named = select(LATEST.c.programme).distinct()
    if programmes is not None:
        high = high.where(FACT.c.programme.in_(programmes))
        named = named.where(LATEST.c.programme.in_(programmes))
    returned = named.subquery("returned")
    stage = func.coalesce(FACT.c.stage, 0)
    low = (select(returned.c.programme, ACT.c.qn, literal(LOW), ACT.c.site_id, stage,
                  FACT.c.tool, ACT.c.icb_code, ACT.c.psc_code, SITE.c.region)
           .select_from(ACT.join(returned, true())
                        .outerjoin(FACT, and_(FACT.c.site_id == ACT.c.site_id,
                                              FACT.c.qn == ACT.c.qn,
                                              FACT.c.programme == returned.c.programme))
                        .outerjoin(SITE, SITE.c.site_id == ACT.c.site_id))
           .where(activity, ACT.c.observation_sets > 0, stage < 4))
    return union_all(high, low)
