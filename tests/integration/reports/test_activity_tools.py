"""Activity for one tool: the sites whose stage in force names it, rolled up as it comes in.

Events go through the live consumer (SQLite and PostgreSQL); every expected figure is
written out by hand. Columns of ``view``: observation sets, residents observed, scored,
complete, low, low-medium, medium, high, red scores, flags, claim mismatches. Sites 1-A
(ICB QJK) and 1-B (QUY) are in PSC SW, 1-C (QHL) in WM. The property test
(test_rebuild_equivalence) varies the order, the batching, moves and closures.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect, select, text

from services.reports import activity, consumers, rebuild, upkeep
from services.reports.activity import TOOL
from services.reports.facts import Horizon
from shared.events import parse
from shared.migrations import upgrade
from tests.integration.reports.support import (
    FIRST,
    IN_Q3,
    Q3,
    T1,
    T2,
    deliver,
    downgrade,
    migrated_to,
    observation,
    reports_runtime,
    score,
    site,
    stage,
    updated,
    view,
)

pytestmark = pytest.mark.integration
ONE = (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
TWO = (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)
THREE = (3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0)
LEVELS = ("national", "icb", "psc", "site")


async def by_tool(rt, tool: str, programme: str = "care-homes") -> dict[str, dict]:
    return {level: await view(rt, level, tool=tool, programme=programme) for level in LEVELS}


def sites() -> list:
    return [site("1-A", "QJK"), site("1-B", "QUY"), site("1-C", "QHL")]


def readings() -> list:
    return [observation("1-A", "p1_x", T1), observation("1-A", "p1_y", T2),
            observation("1-B", "p1_z", T1, icb="QUY"), observation("1-C", "p1_w", T1)]


async def test_one_tool_counts_the_sites_whose_stage_in_force_names_it(rt):
    await deliver(rt, [*sites(), stage("1-A", 3, IN_Q3, tool="NEWS2"),
                       stage("1-B", 5, IN_Q3, tool="RESTORE2"), *readings()])
    assert await by_tool(rt, "NEWS2") == {
        "national": {"ENG": TWO}, "icb": {"QJK": TWO}, "psc": {"SW": TWO},
        "site": {"1-A": TWO}}
    assert await by_tool(rt, "RESTORE2") == {
        "national": {"ENG": ONE}, "icb": {"QUY": ONE}, "psc": {"SW": ONE},
        "site": {"1-B": ONE}}
    assert await by_tool(rt, "NEWS2", programme="other") == dict.fromkeys(LEVELS, {})
    # 1-C reported no stage: it names no tool, and counts only among all tools
    assert await view(rt, "national") == {"ENG": (4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0)}


async def test_a_stage_after_the_readings_takes_them_to_its_tool(rt):
    recorded = observation("1-A", "p1_x", T1)
    await deliver(rt, [*sites(), recorded,
                       score("1-A", "p1_x", T1, total=6, risk="medium", of=recorded)])
    assert await by_tool(rt, "NEWS2") == dict.fromkeys(LEVELS, {})
    await deliver(rt, [stage("1-A", 3, IN_Q3, tool="NEWS2")])
    scored = (1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0)
    assert await by_tool(rt, "NEWS2") == {
        "national": {"ENG": scored}, "icb": {"QJK": scored}, "psc": {"SW": scored},
        "site": {"1-A": scored}}


async def test_a_late_return_naming_another_tool_moves_the_quarters_activity(rt):
    await deliver(rt, [*sites(), stage("1-A", 3, IN_Q3, tool="NEWS2"),
                       stage("1-B", 5, IN_Q3, tool="RESTORE2"), *readings()])
    # reported later, applying from November: in force at the quarter's end
    await deliver(rt, [stage("1-A", 4, date(2022, 11, 1), tool="RESTORE2",
                             reported=datetime(2023, 7, 20, tzinfo=UTC))])
    assert await by_tool(rt, "NEWS2") == dict.fromkeys(LEVELS, {})
    assert await by_tool(rt, "RESTORE2") == {
        "national": {"ENG": THREE}, "icb": {"QJK": TWO, "QUY": ONE}, "psc": {"SW": THREE},
        "site": {"1-A": TWO, "1-B": ONE}}
    # the same site's stage in another programme counts there as well
    await deliver(rt, [stage("1-A", 2, IN_Q3, tool="NEWS2", programme="other")])
    assert await by_tool(rt, "NEWS2", programme="other") == {
        "national": {"ENG": TWO}, "icb": {"QJK": TWO}, "psc": {"SW": TWO},
        "site": {"1-A": TWO}}
    assert (await by_tool(rt, "RESTORE2"))["national"] == {"ENG": THREE}


async def test_a_site_that_moves_takes_its_tools_counts_to_its_new_areas(rt):
    await deliver(rt, [*sites(), stage("1-A", 3, IN_Q3, tool="NEWS2"), *readings(),
                       updated("1-A", "QHL", 2)])   # QHL is in PSC WM
    assert await by_tool(rt, "NEWS2") == {
        "national": {"ENG": TWO}, "icb": {"QHL": TWO}, "psc": {"WM": TWO},
        "site": {"1-A": TWO}}


async def test_a_site_closed_before_the_quarter_ends_names_no_tool_in_it(rt):
    await deliver(rt, [*sites(), stage("1-A", 3, IN_Q3, tool="NEWS2"), *readings()])
    await deliver(rt, [site("1-A", "QJK", 2, closed=date(2022, 12, 21))])
    assert await by_tool(rt, "NEWS2") == dict.fromkeys(LEVELS, {})
    assert (await view(rt, "icb"))["QJK"] == TWO   # all tools: its readings still count


async def test_a_rebuild_derives_the_same_roll_ups_per_tool(rt):
    await deliver(rt, [*sites(), stage("1-A", 3, IN_Q3, tool="NEWS2"),
                       stage("1-B", 5, IN_Q3, tool="RESTORE2"), *readings(),
                       updated("1-B", "QHL", 2)])
    before = {tool: await by_tool(rt, tool) for tool in ("NEWS2", "RESTORE2")}
    async with rt.db.transaction() as s:
        await s.execute(TOOL.delete())
    # the roll-ups are gone; site level joins the site rows with the facts
    assert await by_tool(rt, "NEWS2") == {"national": {}, "icb": {}, "psc": {},
                                          "site": {"1-A": TWO}}
    await rebuild.rebuild_from_history(rt.db, Horizon.of(FIRST))
    assert {tool: await by_tool(rt, tool) for tool in before} == before == {
        "NEWS2": {"national": {"ENG": TWO}, "icb": {"QJK": TWO}, "psc": {"SW": TWO},
                  "site": {"1-A": TWO}},
        "RESTORE2": {"national": {"ENG": ONE}, "icb": {"QHL": ONE}, "psc": {"WM": ONE},
                     "site": {"1-B": ONE}}}


async def test_facts_are_not_refreshed_without_the_areas_lock(rt):
    """A transaction that may change the facts must hold ``activity.lock_areas`` from
    before it writes them (see ``activity``): the upkeep refuses otherwise."""
    await deliver(rt, [*sites()])
    with pytest.raises(RuntimeError, match="lock_areas"):
        async with rt.db.transaction() as s:
            upkeep.mark(s, Horizon.of(FIRST), "1-A", None)
            await upkeep.flush(s)


async def test_an_add_waits_for_a_tool_change_and_then_counts_under_the_new_tool(
        pg_url, tmp_path):
    """PostgreSQL, two workers at once: while one applies a stage naming another tool (it
    holds ``activity.AREAS`` exclusively and has rewritten the facts, not committed),
    another adding a reading there waits for the lock, then reads the new facts and counts
    it under the new tool. Had it read the facts first, it would have counted it under the
    old tool after the change had moved that tool's rows."""
    rt = reports_runtime(tmp_path, pg_url)
    await upgrade(rt.db, rt.migrations)
    try:
        await deliver(rt, [site("1-A", "QJK"), stage("1-A", 3, IN_Q3, tool="NEWS2"),
                           observation("1-A", "p1_x", T1)])
        change = stage("1-A", 4, date(2022, 11, 1), tool="RESTORE2",
                       reported=datetime(2023, 7, 20, tzinfo=UTC))
        changing = rt.db.transaction()
        session = await changing.__aenter__()
        try:
            await consumers.batch_handler(Horizon.of(FIRST))(session, [(change, parse(change))])

            async def add() -> None:
                async with rt.db.transaction() as other:
                    await activity.add_many(other, [parse(observation("1-A", "p1_y", T2))])

            adding = asyncio.ensure_future(add())
            await asyncio.sleep(0.5)
            assert not adding.done()   # waiting for the tool change
        except BaseException:
            await changing.__aexit__(None, None, None)
            raise
        await changing.__aexit__(None, None, None)
        await asyncio.wait_for(adding, 10)
        assert await by_tool(rt, "RESTORE2") == {
            "national": {"ENG": TWO}, "icb": {"QJK": TWO}, "psc": {"SW": TWO},
            "site": {"1-A": TWO}}
        async with rt.db.session() as s:
            rows = (await s.execute(select(TOOL.c.tool, TOOL.c.observation_sets)
                                    .where(TOOL.c.level == "national"))).all()
        assert sorted(rows) == [("NEWS2", 0), ("RESTORE2", 2)]
    finally:
        await rt.db.dispose()



@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_the_migration_rolls_existing_activity_up_per_tool(tmp_path, request, dialect):
    """0015 on a database with activity and facts: the roll-ups per tool are summed from
    them (1-A and 1-B name NEWS2, 1-C RESTORE2 in another programme, 1-D no tool)."""
    runtime = await migrated_to(tmp_path, request, dialect, "0014")
    async with runtime.db.transaction() as s:
        await s.execute(text(
            "INSERT INTO reports_activity (site_id, qn, icb_code, psc_code, observation_sets,"
            " flags, residents) VALUES (:s, :q, :i, :p, :n, :f, :r)"), [
            {"s": "1-A", "q": Q3, "i": "QJK", "p": "SW", "n": 3, "f": 1, "r": 2},
            {"s": "1-B", "q": Q3, "i": "QUY", "p": "SW", "n": 2, "f": 0, "r": 2},
            {"s": "1-C", "q": Q3, "i": "QHL", "p": "WM", "n": 5, "f": 2, "r": 4},
            {"s": "1-D", "q": Q3, "i": "QHL", "p": "WM", "n": 7, "f": 0, "r": 5}])
        await s.execute(text(
            "INSERT INTO reports_stage_fact (site_id, programme, qn, tool, stage, icb_code,"
            " psc_code, region) VALUES (:s, :p, :q, :t, 3, 'QJK', 'SW', 'South West')"), [
            {"s": "1-A", "p": "care-homes", "q": Q3, "t": "NEWS2"},
            {"s": "1-B", "p": "care-homes", "q": Q3, "t": "NEWS2"},
            {"s": "1-C", "p": "other", "q": Q3, "t": "RESTORE2"},
            {"s": "1-D", "p": "care-homes", "q": Q3, "t": None}])
    await upgrade(runtime.db, runtime.migrations)
    try:
        assert await by_tool(runtime, "NEWS2") == {
            "national": {"ENG": (5, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0)},
            "icb": {"QJK": (3, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0),
                    "QUY": (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
            "psc": {"SW": (5, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0)},
            "site": {"1-A": (3, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0),
                     "1-B": (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)}}
        assert (await by_tool(runtime, "RESTORE2", programme="other"))["psc"] == {
            "WM": (5, 4, 0, 0, 0, 0, 0, 0, 0, 2, 0)}
        await downgrade(runtime, "0014")
        async with runtime.db.engine.begin() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "reports_activity_tool" not in tables and "reports_activity" in tables
    finally:
        await runtime.db.dispose()
