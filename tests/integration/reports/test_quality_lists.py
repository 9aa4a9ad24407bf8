"""Data quality's site lists kept as rows (``services/reports/quality.py``), by hand.

Events go through the live consumer (SQLite and PostgreSQL); ``kept`` reads the rows and the
national counts straight from their tables, and every figure is written out by hand. Sites
1-A (ICB QJK) and 1-B (QUY) are in PSC SW, South West; 1-C (QHL) in WM, Midlands. The
property test (test_rebuild_equivalence) holds every read of the kept rows to the lists'
definition (the facts joined with the activity rows) under random histories.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect, select, text

from services.reports.quality import COUNTED, HIGH, LISTED, LOW
from shared.migrations import upgrade
from tests.integration.reports.support import (
    IN_Q3,
    Q3,
    Q4,
    T1,
    T2,
    deliver,
    downgrade,
    migrated_to,
    observation,
    site,
    stage,
    updated,
    withdrawal,
)

pytestmark = pytest.mark.integration
SW, WM = ("SW", "South West"), ("WM", "Midlands")


async def kept(rt, qn: int = Q3, programme: str = "care-homes") -> dict:  # noqa: ANN001
    """check -> [(site, stage, tool, ICB, PSC, region)] and check -> national count (0s
    left out)."""
    async with rt.db.session() as s:
        rows = (await s.execute(
            select(LISTED.c.kind, LISTED.c.site_id, LISTED.c.stage, LISTED.c.tool,
                   LISTED.c.icb_code, LISTED.c.psc_code, LISTED.c.region)
            .where(LISTED.c.programme == programme, LISTED.c.qn == qn)
            .order_by(LISTED.c.kind, LISTED.c.site_id))).all()
        counts = dict((await s.execute(
            select(COUNTED.c.kind, COUNTED.c.sites)
            .where(COUNTED.c.programme == programme, COUNTED.c.qn == qn,
                   COUNTED.c.sites != 0))).all())
    lists: dict[str, list] = {}
    for kind, *item in rows:
        lists.setdefault(kind, []).append(tuple(item))
    return {"lists": lists, "counts": counts}


def returns() -> list:
    return [site("1-A", "QJK"), site("1-B", "QUY"), site("1-C", "QHL"),
            stage("1-A", 5, IN_Q3), stage("1-B", 6, IN_Q3), stage("1-C", 2, IN_Q3, icb="QHL")]


async def test_a_quarters_first_reading_keeps_its_lists_and_each_site_moves_on_them(rt):
    await deliver(rt, returns())
    assert await kept(rt) == {"lists": {}, "counts": {}}   # no activity in Q3: joined
    await deliver(rt, [observation("1-C", "p1_w", T1, icb="QHL")])
    assert await kept(rt) == {
        "lists": {HIGH: [("1-A", 5, "NEWS2", "QJK", *SW), ("1-B", 6, "NEWS2", "QUY", *SW)],
                  LOW: [("1-C", 2, "NEWS2", "QHL", *WM)]},
        "counts": {HIGH: 2, LOW: 1}}
    first = observation("1-A", "p1_x", T2)
    await deliver(rt, [first])   # 1-A's observations start
    assert (await kept(rt))["counts"] == {HIGH: 1, LOW: 1}
    assert (await kept(rt))["lists"][HIGH] == [("1-B", 6, "NEWS2", "QUY", *SW)]
    await deliver(rt, [withdrawal(first)])   # and end: on the list again
    assert (await kept(rt))["lists"][HIGH] == [("1-A", 5, "NEWS2", "QJK", *SW),
                                               ("1-B", 6, "NEWS2", "QUY", *SW)]
    assert (await kept(rt))["counts"] == {HIGH: 2, LOW: 1}
    assert await kept(rt, Q4) == {"lists": {}, "counts": {}}


async def test_returns_moves_and_a_new_programme_change_the_kept_lists(rt):
    await deliver(rt, [*returns(), observation("1-C", "p1_w", T1, icb="QHL"),
                       observation("1-A", "p1_x", T1)])
    # a later return puts 1-C at stage 4 from November: below 4 no longer
    await deliver(rt, [stage("1-C", 4, date(2022, 11, 1), icb="QHL",
                             reported=datetime(2023, 7, 20, tzinfo=UTC))])
    assert await kept(rt) == {"lists": {HIGH: [("1-B", 6, "NEWS2", "QUY", *SW)]},
                              "counts": {HIGH: 1}}
    await deliver(rt, [updated("1-B", "QHL", 2)])   # the register moves 1-B to WM
    assert (await kept(rt))["lists"] == {HIGH: [("1-B", 6, "NEWS2", "QHL", *WM)]}
    # a programme's first return: every observed site is below stage 4 in it (0 without one)
    await deliver(rt, [stage("1-B", 1, IN_Q3, programme="other", icb="QHL")])
    assert await kept(rt, programme="other") == {
        "lists": {LOW: [("1-A", 0, None, "QJK", *SW), ("1-C", 0, None, "QHL", *WM)]},
        "counts": {LOW: 2}}


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_the_migration_keeps_the_lists_of_quarters_with_activity(tmp_path, request,
                                                                        dialect):
    """0016 on a database with facts in Q3 and Q4 and activity in Q3 only: Q3's lists are
    kept (1-A at stage 6 without observations; 1-C observed, at stage 2; 1-D observed with no
    fact, at 0 and unregistered; 1-B observed at stage 5 is on neither), Q4's are not."""
    runtime = await migrated_to(tmp_path, request, dialect, "0015")
    async with runtime.db.transaction() as s:
        await s.execute(text(
            "INSERT INTO reports_site (site_id, icb_code, psc_code, region, revision) "
            "VALUES (:s, :i, :p, :r, 1)"), [
            {"s": "1-A", "i": "QJK", "p": "SW", "r": "South West"},
            {"s": "1-B", "i": "QUY", "p": "SW", "r": "South West"},
            {"s": "1-C", "i": "QHL", "p": "WM", "r": "Midlands"}])
        await s.execute(text(
            "INSERT INTO reports_activity (site_id, qn, icb_code, psc_code, observation_sets)"
            " VALUES (:s, :q, :i, :p, :n)"), [
            {"s": "1-A", "q": Q3, "i": "QJK", "p": "SW", "n": 0},
            {"s": "1-B", "q": Q3, "i": "QUY", "p": "SW", "n": 2},
            {"s": "1-C", "q": Q3, "i": "QHL", "p": "WM", "n": 1},
            {"s": "1-D", "q": Q3, "i": "QUY", "p": "SW", "n": 3}])
        await s.execute(text("INSERT INTO reports_activity_quarter (qn, version) "
                             "VALUES (:q, 'v')"), {"q": Q3})
        await s.execute(text(
            "INSERT INTO reports_stage_fact (site_id, programme, qn, tool, stage, icb_code,"
            " psc_code, region) VALUES (:s, 'care-homes', :q, 'NEWS2', :n, :i, :p, :r)"), [
            {"s": "1-A", "q": Q3, "n": 6, "i": "QJK", "p": "SW", "r": "South West"},
            {"s": "1-B", "q": Q3, "n": 5, "i": "QUY", "p": "SW", "r": "South West"},
            {"s": "1-C", "q": Q3, "n": 2, "i": "QHL", "p": "WM", "r": "Midlands"},
            {"s": "1-A", "q": Q4, "n": 7, "i": "QJK", "p": "SW", "r": "South West"}])
        await s.execute(text(
            "INSERT INTO reports_latest_return (programme, psc_code, reported_at) "
            "VALUES ('care-homes', 'SW', :at)"), {"at": datetime(2023, 1, 5, tzinfo=UTC)})
    await upgrade(runtime.db, runtime.migrations)
    try:
        assert await kept(runtime) == {
            "lists": {HIGH: [("1-A", 6, "NEWS2", "QJK", *SW)],
                      LOW: [("1-C", 2, "NEWS2", "QHL", *WM), ("1-D", 0, None, "QUY", "SW", None)]},
            "counts": {HIGH: 1, LOW: 2}}
        assert await kept(runtime, Q4) == {"lists": {}, "counts": {}}
        await downgrade(runtime, "0015")
        async with runtime.db.engine.begin() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "reports_quality_site" not in tables and "reports_quality_count" not in tables
    finally:
        await runtime.db.dispose()
