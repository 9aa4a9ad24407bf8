"""Adoption and transition views maintained from events (SQLite), hand-worked figures."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.reports import queries
from services.reports.domain.adoption import ALL_TOOLS, Ambitions
from services.reports.domain.stages import ordinal
from services.reports.models import StageFact
from shared.bus.base import Record
from shared.bus.memory import MemoryBus
from shared.events import encode
from shared.quarters import Quarter
from tests.integration.reports.support import deliver, reports_runtime, site, stage, updated

pytestmark = pytest.mark.integration
TOPIC = {**{t: "adoption.sites" for t in ("SiteRegistered", "SiteUpdated", "SiteClosed")},
         "StageChanged": "adoption.stages"}
Q = {label: ordinal(Quarter.parse(label)) for label in
     ("2022/23 Q1", "2022/23 Q2", "2022/23 Q3", "2022/23 Q4", "2023/24 Q1")}


def d(s: str) -> date:
    return date.fromisoformat(s)


@pytest.fixture
async def runtime(tmp_path):
    rt = reports_runtime(tmp_path)
    await rt.start(relay=False, consumers=False)
    yield rt
    await rt.stop()


SCENARIO = [
    site("1-A"), site("1-B"), site("1-C"), site("1-D", "QHL"),
    stage("1-A", 3, d("2022-05-01")), stage("1-A", 5, d("2022-11-01")),
    stage("1-B", 7, d("2022-08-01"), tool="Soft signs"),
    stage("1-D", 4, d("2022-04-10"), icb="QHL"),
    site("1-D", "QHL", 2, closed=d("2023-01-15")),
]


async def national(rt, label: str, tool: str = ALL_TOOLS):
    async with rt.db.session() as s:
        rows = await queries.adoption(s, area=queries.Area("national"), programme="care-homes",
                                      first=Q[label], last=Q[label], tool=tool,
                                      targets=Ambitions())
    assert len(rows) == 1
    return rows[0]


async def test_quarter_end_stages_denominators_and_change(runtime):
    await deliver(runtime, SCENARIO)
    q3 = await national(runtime, "2022/23 Q3")
    assert (q3.denominator, q3.stages) == (4, (1, 0, 0, 0, 1, 1, 0, 1))
    assert q3.measures["ge3"].percent == Decimal("75.0")
    assert q3.measures["eq7"].numerator == 1
    q4 = await national(runtime, "2022/23 Q4")   # 1-D closed on 15 Jan 2023
    assert (q4.denominator, q4.stages) == (3, (1, 0, 0, 0, 0, 1, 0, 1))
    assert q4.measures["ge3"].percent == Decimal("66.7")
    assert q4.measures["ge3"].change_numerator == -1
    assert q4.measures["ge3"].change_points == Decimal("-8.3")
    assert q4.ambitions["sustained"] == (Decimal(40), False)


async def test_late_correction_rewrites_earlier_and_later_quarters(runtime):
    await deliver(runtime, SCENARIO)
    assert (await national(runtime, "2022/23 Q1")).stages[3] == 1
    await deliver(runtime, [stage("1-A", 2, d("2022-06-01"),
                                  reported=datetime(2023, 8, 1, tzinfo=UTC))])
    q1, q2, q3 = [await national(runtime, q) for q in ("2022/23 Q1", "2022/23 Q2", "2022/23 Q3")]
    assert (q1.stages[2], q1.stages[3]) == (1, 0)
    assert (q2.stages[2], q2.stages[3]) == (1, 0)
    assert q3.stages[5] == 1   # stage 5 from November still holds
    async with runtime.db.session() as s:
        moved = await queries.transitions(s, area=queries.Area("national"),
                                          programme="care-homes", qn=Q["2022/23 Q3"])
    t = moved["ENG"]
    assert (t.up, t.down, t.same) == (1, 0, 3) and t.moves == {(2, 5): 1}


async def test_per_tool_rows_share_the_area_denominator(runtime):
    await deliver(runtime, SCENARIO)
    soft = await national(runtime, "2022/23 Q3", tool="Soft signs")
    assert (soft.denominator, soft.stages) == (4, (0, 0, 0, 0, 0, 0, 0, 1))
    async with runtime.db.session() as s:
        rows = await queries.adoption(s, area=queries.Area("icb"), programme="care-homes",
                                      first=Q["2022/23 Q3"], last=Q["2022/23 Q3"],
                                      tool=queries.EACH_TOOL, targets=Ambitions())
    assert [(r.code, r.tool, r.denominator) for r in rows] == [
        ("QHL", ALL_TOOLS, 1), ("QHL", "NEWS2", 1),
        ("QJK", ALL_TOOLS, 3), ("QJK", "NEWS2", 3), ("QJK", "Soft signs", 3)]


async def test_a_site_move_and_duplicates(runtime):
    await deliver(runtime, SCENARIO + SCENARIO)   # same ids again: inbox no-ops
    await deliver(runtime, [updated("1-A", "QHL", 3)])
    async with runtime.db.session() as s:
        rows = await queries.adoption(s, area=queries.Area("region"), programme="care-homes",
                                      first=Q["2022/23 Q3"], last=Q["2022/23 Q3"],
                                      tool=ALL_TOOLS, targets=Ambitions())
    assert [(r.code, r.denominator, r.stages[5]) for r in rows] == [
        ("Midlands", 2, 1), ("South West", 2, 0)]


async def test_stage_before_registration_counts_once_registered(runtime):
    await deliver(runtime, [stage("1-Z", 6, d("2022-05-01"))])
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(StageFact))).scalar_one() == 0
    await deliver(runtime, [site("1-Z")])
    assert (await national(runtime, "2022/23 Q1")).stages[6] == 1


async def test_views_follow_the_bus(tmp_path):
    bus = MemoryBus(partitions=3)
    runtime = reports_runtime(tmp_path, bus=bus)
    await runtime.start()
    try:
        await bus.publish([Record(TOPIC[e.type], e.subject, encode(e)) for e in SCENARIO])
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            row = await national(runtime, "2022/23 Q4")
            if row.denominator == 3 and row.stages[7] == 1 or \
                    asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        assert (row.denominator, row.stages) == (3, (1, 0, 0, 0, 0, 1, 0, 1))
    finally:
        await runtime.stop()


async def test_activity_counters_do_not_depend_on_batching(tmp_path):
    """One batch of many events (duplicates inside it) adds exactly what one-by-one does."""
    from services.reports.models import Activity, ActivityResident
    from tests.integration.reports.support import flag, observation, score

    t1, t2 = datetime(2022, 11, 3, 10, tzinfo=UTC), datetime(2023, 2, 1, 9, tzinfo=UTC)
    events = [observation("1-A", "p1_x", t1), observation("1-A", "p1_x", t1),
              observation("1-A", "p1_y", t2), observation("1-D", "p1_z", t1, icb="QHL"),
              score("1-A", "p1_x", t1, total=7, risk="high"),
              score("1-A", "p1_x", t1, total=None, risk=None, mismatch=True),
              score("1-A", "p1_y", t2, total=1, risk="low"), flag("1-A", "p1_x", t1),
              score("1-B", "p1_w", t1, total=None, risk=None, rejected=True)]   # counts nothing
    events.append(events[0])   # redelivered inside the same batch

    async def counters(batch: int) -> tuple[list, list]:
        rt = reports_runtime(tmp_path / str(batch))
        await rt.start(relay=False, consumers=False)
        try:
            await deliver(rt, events, batch)
            async with rt.db.session() as s:
                act = sorted(tuple(r) for r in (await s.execute(select(Activity.__table__))))
                res = sorted(tuple(r) for r in (await s.execute(
                    select(ActivityResident.__table__))))
        finally:
            await rt.stop()
        return act, res

    one_by_one, batched = await counters(1), await counters(len(events))
    assert batched == one_by_one
    act, res = batched
    q3, q4 = Q["2022/23 Q3"], Q["2022/23 Q4"]
    #  site, qn, icb, psc, obs, scored, complete, low, low-med, med, high, red, flags, mismatch,
    #  residents
    assert act == [("1-A", q3, "QJK", "SW", 2, 2, 1, 0, 0, 0, 1, 0, 1, 1, 1),
                   ("1-A", q4, "QJK", "SW", 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1),
                   ("1-D", q3, "QHL", "WM", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)]
    #  site, qn, resident, standing sets (p1_x: two sets recorded in Q3)
    assert res == [("1-A", q3, "p1_x", 2), ("1-A", q4, "p1_y", 1), ("1-D", q3, "p1_z", 1)]
